"""TALLRec: the published strings, samples from rated histories, in-context Yes/No ids, AUC, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import semid
from _lcrec_tiny import build_tiny_model, dataset_texts
from semid.cli.main import cli
from semid.errors import DataError
from semid.gen.tallrec import ALPACA_TEMPLATE, build_samples, render_prompt, split_samples

DATA = "builtin:all_beauty_2023"


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset(DATA)


def test_prompt_is_the_reference_text():
    sample = semid.gen.tallrec.TallRecSample("u", ("a", "b"), ("c",), "t", 1, 0.0)
    prompt = render_prompt(sample, {"a": "Heat", "b": "Up", "c": "Cars", "t": "Jaws"}.__getitem__)
    assert prompt == (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.  # noqa: E501\n\n### Instruction:\n"
        "Given the user's preference and unpreference, identify whether the user will like the target movie by "
        'answering "Yes." or "No.".\n\n### Input:\nUser Preference: "Heat", "Up"\nUser Unpreference: "Cars"\n'
        'Whether the user will like the target movie "Jaws"?\n\n### Response:\n'
    )
    assert ALPACA_TEMPLATE.endswith("### Response:\n")


def test_samples_follow_the_preprocessing_rule(data):
    samples = build_samples(data, history=3, keep_last=None, order="time")
    seqs = data.sequences
    u = next(i for i, s in enumerate(seqs.items) if len(s) >= 5)
    first = next(s for s in samples if s.user_id == seqs.user_ids[u] and s.target == seqs.items[u][3])
    window = range(0, 3)
    assert first.liked == tuple(seqs.items[u][j] for j in window if seqs.ratings[u][j] > 3)
    assert first.disliked == tuple(seqs.items[u][j] for j in window if seqs.ratings[u][j] <= 3)
    assert first.label == int(seqs.ratings[u][3] > 3)
    assert [s.time for s in samples] == sorted(s.time for s in samples)
    train, valid, test = split_samples(samples)
    assert len(train) == int(0.8 * len(samples)) and max(s.time for s in train) <= min(s.time for s in test)
    unrated = semid.Dataset("plain", data.items, semid.Sequences(seqs.user_ids, seqs.items))
    with pytest.raises(DataError, match="has no ratings"):
        build_samples(unrated)


def test_evaluation_subsets_depend_on_the_seed_only(data):
    from semid.gen.tallrec import TallRecConfig, evaluation_subsets

    _, valid, test = split_samples(build_samples(data, history=3, keep_last=None))
    subsets = {n: evaluation_subsets(valid, test, TallRecConfig(samples=n, valid_samples=5, test_samples=7))
               for n in (16, 64, 256)}
    assert len({(tuple(map(id, v)), tuple(map(id, t))) for v, t in subsets.values()}) == 1
    v, t = subsets[16]
    assert len(v) == 5 and len(t) == 7 and set(map(id, t)) <= set(map(id, test))
    other = evaluation_subsets(valid, test, TallRecConfig(seed=1, valid_samples=5, test_samples=7))[1]
    assert list(map(id, other)) != list(map(id, t))
    assert evaluation_subsets(valid, test, TallRecConfig(valid_samples=5))[1] == test  # 0: the whole split


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, data):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "m", dataset_texts(data))


def test_yes_no_ids_in_context_and_probability(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from semid.gen.tallrec import yes_no_token_ids, yes_probability

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    prompt = ALPACA_TEMPLATE.format(instruction="x", input="y")
    yes, no = yes_no_token_ids(tokenizer, prompt)
    assert tokenizer.decode([yes]).startswith("Y") and tokenizer.decode([no]).startswith("N")
    p = yes_probability(AutoModelForCausalLM.from_pretrained(tiny), tokenizer, [prompt, prompt + " "], yes, no)
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))


def test_training_early_stops_on_auc_keeps_the_best_and_resumes(tiny, tmp_path):
    out = tmp_path / "run"
    args = ["train", "tallrec", "--data", DATA, "--out", str(out), "--llm", str(tiny), "--samples", "16",
            "--max-epochs", "2", "--quiet", "--set", "history=3", "--set", "keep_last=200", "--set", "batch_size=8",
            "--set", "micro_batch=4", "--set", "valid_samples=10", "--set", "learning_rate=0.001"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["metric"] == "auc" and summary["stopped"] == "max_epochs" and summary["steps"] == 4
    assert 0.0 <= summary["test_auc"] <= 1.0 and 0.0 <= summary["test_auc_base"] <= 1.0
    assert summary["split"]["test"] == 20 and summary["split"]["shots"] == 16
    events = [json.loads(line)["event"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert events.count("valid") == 2 and events[-1] == "test"
    resumed = CliRunner().invoke(cli, [*args[:args.index("--max-epochs")], "--max-epochs", "3",
                                       *args[args.index("--max-epochs") + 2:], "--resume"])
    assert resumed.exit_code == 0, resumed.output
    again = json.loads(resumed.stdout)
    assert again["epochs"] == 3 and again["steps"] == 6 and again["test_auc_base"] == summary["test_auc_base"]
