"""LC-Rec instruction data: tasks, templates, training-split targets, determinism."""

from __future__ import annotations

import json

import pytest

import semid
from semid.data.dataset import Dataset, ItemTable, Sequences
from semid.errors import ArtifactError, ParameterError
from semid.evaluation import leave_one_out
from semid.gen.lcrec.tasks import ALL_TASKS, build_examples, check_tasks, derive_intention, derive_preference
from semid.gen.lcrec.templates import load_prompts


def _toy_dataset() -> Dataset:
    items = [
        {"item_id": f"i{k}", "title": f"Rose Glow Serum number {k}", "brand": "Acme" if k % 2 else "Bolt",
         "categories": ["Beauty", "Skin Care", "Serums" if k % 3 else "Masks"], "description": f"Item {k} text."}
        for k in range(12)
    ]
    # Items i9, i10, i11 only ever appear as validation/test targets (the last two positions).
    seqs = [["i0", "i1", "i2", "i3", "i9", "i10"], ["i4", "i5", "i6", "i10", "i11"], ["i7", "i8", "i0", "i11", "i9"]]
    return Dataset("toy", ItemTable(items), Sequences([f"u{k}" for k in range(3)], seqs))


def test_prompt_file_is_versioned_and_complete():
    prompts = load_prompts()
    assert prompts.version == "lcrec-v1"
    assert len(prompts.sha256) == 64
    for task in ("seqrec", "item2index", "index2item", "fusionseqrec_title", "fusionseqrec_index", "itemsearch",
                 "preferenceobtain", "text"):
        assert len(prompts.templates(task)) >= 1
    assert all(len(prompts.templates(t)) >= 2 for t in ("seqrec", "item2index", "index2item", "itemsearch"))


def test_bad_prompt_files(tmp_path):
    with pytest.raises(ParameterError, match="unknown prompt set"):
        load_prompts("nope")
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ArtifactError, match="format"):
        load_prompts(str(bad))


@pytest.mark.parametrize("tasks", [[], [" "], ["seqrec", "dance"]])
def test_task_list_errors(tasks):
    with pytest.raises(ParameterError, match="empty|unknown LC-Rec task"):
        check_tasks(tasks)


def test_every_task_builds_examples_with_training_targets_only():
    data = _toy_dataset()
    index = semid.make("independent", seed=1).fit(data.items)
    split = leave_one_out(data)
    examples = build_examples(data, index, split, load_prompts(), ALL_TASKS, seed=0)
    assert {e.task for e in examples} == set(ALL_TASKS)
    held_out = {index.render(i) for i in ("i9", "i10", "i11")}
    held_titles = {data.items[i]["title"] for i in ("i9", "i10", "i11")}
    for example in examples:
        text = example.instruction() + " " + example.response
        assert not any(code in text for code in held_out), example
        assert not any(title in text for title in held_titles), example
    seqrec = [e for e in examples if e.task == "seqrec"]
    # every prefix of every training sequence: (4-1) + (3-1) + (3-1)
    assert len(seqrec) == 7
    text = [e for e in examples if e.task == "text"]
    assert any("Paris" in e.response for e in text)  # generic questions are mixed in


def test_examples_are_deterministic_under_a_seed():
    data = _toy_dataset()
    index = semid.make("independent", seed=1).fit(data.items)
    split = leave_one_out(data)
    a = build_examples(data, index, split, load_prompts(), ALL_TASKS, seed=3)
    b = build_examples(data, index, split, load_prompts(), ALL_TASKS, seed=3)
    c = build_examples(data, index, split, load_prompts(), ALL_TASKS, seed=4)
    assert a == b
    assert a != c


def test_max_per_task_caps_each_task():
    data = _toy_dataset()
    index = semid.make("independent").fit(data.items)
    examples = build_examples(data, index, leave_one_out(data), load_prompts(), ["seqrec", "text"], max_per_task=2)
    assert sum(e.task == "seqrec" for e in examples) == 2
    assert sum(e.task == "text" for e in examples) == 2


def test_history_drops_oldest_items_first():
    data = _toy_dataset()
    index = semid.make("independent").fit(data.items)
    example = next(e for e in build_examples(data, index, leave_one_out(data), load_prompts(), ["seqrec"])
                   if len(e.history) == 3)
    assert example.history[0] not in example.instruction(1)
    assert example.history[-1] in example.instruction(2)


def test_derived_intention_and_preference():
    record = {"title": "OPI Nail Lacquer Gel Shine Red", "brand": "OPI", "categories": ["Beauty", "Nail Polish"]}
    intention = derive_intention(record)
    assert intention.startswith("I am looking for nail polish by OPI")
    assert "'lacquer'" in intention and "'opi'" not in intention
    assert derive_intention({}) == "I am looking for a product."
    pref = derive_preference([record, record, {"categories": ["Beauty", "Masks"], "brand": "Acme"}])
    assert "nail polish" in pref and "OPI (2 purchases)" in pref
    assert "no" in derive_preference([{}]).lower()
