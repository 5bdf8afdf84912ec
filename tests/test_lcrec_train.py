"""LC-Rec training, run directory, resume, inference and CLI with a tiny random LLaMA."""

from __future__ import annotations

import json
import logging

import pytest
import torch

import semid
from _lcrec_tiny import (  # noqa: F401
    lcrec_dataset,
    lcrec_index,
    tiny_config,
    tiny_model_dir,
    trained_run,
)
from semid.errors import ArtifactError
from semid.evaluation import evaluate, leave_one_out


def test_run_layout(trained_run):
    run, _, outcome = trained_run
    assert outcome["finished"] and outcome["steps"] == outcome["total_steps"] > 0
    meta = json.loads((run / "run.json").read_text())
    assert meta["model_type"] == "lcrec" and len(meta["index"]["fingerprint"]) == 64
    for name in ("adapter/adapter_config.json", "adapter/adapter_model.safetensors", "tokenizer/tokenizer.json",
                 "index/tokenizer.json", "lcrec.json"):
        assert (run / "model" / name).exists(), name
    info = json.loads((run / "model" / "lcrec.json").read_text())
    assert info["prompts"]["version"] == "lcrec-v1"
    events = [json.loads(line)["event"] for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert events[0] == "start" and events[-1] == "stop"


def test_recommend_and_evaluate(trained_run, lcrec_dataset):
    from semid.gen.lcrec import load_lcrec_run

    run, _, _ = trained_run
    recommender = load_lcrec_run(run)
    cases = leave_one_out(lcrec_dataset).test[:4]
    lists = recommender.recommend([c.history for c in cases], 5)
    assert [len(x) for x in lists] == [5] * 4
    for items in lists:
        assert len(set(items)) == 5 and all(i in lcrec_dataset.items for i in items)
    excluded = recommender.recommend([cases[0].history], 5, exclude=[set(lists[0][:2])])[0]
    assert not set(lists[0][:2]) & set(excluded) and excluded[:3] == lists[0][2:5]
    result = evaluate(recommender, lcrec_dataset, n_users=6, ks=(5,), progress=False)
    assert result["n_users"] == 6 and result["metrics"]["invalid_rate"] == 0.0


def test_generate_engine_matches_stepper_and_batching(trained_run, lcrec_dataset):
    from semid.gen.lcrec import load_lcrec_run

    run, _, _ = trained_run
    histories = [c.history for c in leave_one_out(lcrec_dataset).test[:3]]
    recommender = load_lcrec_run(run, num_beams=6)
    stepper = recommender.recommend(histories, 6)
    recommender.batch_size = 1
    assert [recommender.recommend([h], 3)[0] for h in histories] == [x[:3] for x in stepper]
    recommender.batch_size, recommender.engine = 3, "generate"
    generate = recommender.recommend(histories, 6)
    assert stepper == generate
    # ANCHORS pitfall 6: sampling defaults in the model's generation_config must not leak in.
    leaky = recommender
    leaky.model.generation_config.do_sample = True
    leaky.model.generation_config.temperature = 5.0
    leaky.model.generation_config.top_k = 2
    leaky.model.generation_config.length_penalty = 3.0
    torch.manual_seed(1)
    assert leaky.recommend(histories, 6) == generate


def test_public_names():
    import semid.gen.lcrec as lcrec

    assert lcrec.__all__ == sorted(lcrec.__all__)
    for name in lcrec.__all__:
        assert getattr(lcrec, name) is not None


def test_beam_search_finds_the_exact_top_items(trained_run, lcrec_dataset):
    """With as many beams as items, the ranking equals exhaustive scoring of every code + EOS."""
    from semid.gen.lcrec import load_lcrec_run

    run, _, _ = trained_run
    recommender = load_lcrec_run(run, num_beams=len(lcrec_dataset.items))
    history = leave_one_out(lcrec_dataset).test[0].history
    prompt = recommender.prompt_ids(history)
    n = len(recommender.item_ids)
    index = recommender.index  # one-token codes: row j's code is a single vocab token
    code_ids = torch.tensor([[int(recommender.token_map[index.vocab.token_id(0, int(index.codes[j, 0]))])]
                             for j in range(n)])
    rows = torch.cat([torch.tensor(prompt).expand(n, -1), code_ids], dim=1)
    with torch.no_grad():
        logp = torch.log_softmax(recommender.model(input_ids=rows).logits.float(), dim=-1)
    eos = recommender.formatter.eos_token_id
    score = logp[:, len(prompt) - 1].gather(1, code_ids).squeeze(1) + logp[:, len(prompt), eos]
    expected = [recommender.item_ids[int(j)] for j in score.argsort(descending=True)[:10]]
    assert recommender.recommend([history], 10)[0] == expected


def test_d3_decoding_with_popularity_assistant(trained_run, lcrec_dataset):
    from semid.gen.decoding.assistant import PopularityScorer
    from semid.gen.lcrec import load_lcrec_run

    run, _, _ = trained_run
    recommender = load_lcrec_run(run, decoding="d3", alpha=0.5)
    recommender.assistant = PopularityScorer(recommender.item_ids, leave_one_out(lcrec_dataset).train_sequences)
    lists = recommender.recommend([c.history for c in leave_one_out(lcrec_dataset).test[:2]], 4)
    assert all(len(set(x)) == 4 for x in lists)


def test_adapter_loads_with_plain_transformers_and_peft(trained_run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from semid.gen.lcrec.run import load_lcrec_model

    run, _, _ = trained_run
    base_path = json.loads((run / "model" / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"]
    tokenizer = AutoTokenizer.from_pretrained(run / "model" / "tokenizer")
    base = AutoModelForCausalLM.from_pretrained(base_path)
    base.resize_token_embeddings(len(tokenizer))
    plain = PeftModel.from_pretrained(base, run / "model" / "adapter").eval()
    ours = load_lcrec_model(run)[0]
    ids = torch.tensor([tokenizer.encode("Which item <i_3><i_7>", add_special_tokens=False)])
    with torch.no_grad():
        assert torch.allclose(plain(input_ids=ids).logits, ours(input_ids=ids).logits, atol=1e-4)


def test_another_index_is_refused(trained_run, lcrec_dataset, tmp_path):
    from semid.gen.lcrec import load_lcrec_run, train_lcrec

    run, _, _ = trained_run
    other = semid.make("independent", seed=7).fit(lcrec_dataset.items)
    with pytest.raises(ArtifactError, match="fingerprint"):
        load_lcrec_run(run, index=other)
    config = semid.gen.lcrec.LCRecConfig.from_dict(json.loads((run / "run.json").read_text())["config"])
    with pytest.raises(ArtifactError, match="fingerprint"):
        train_lcrec(lcrec_dataset, other, run, config, resume=True, progress=False)


def test_resume_after_interruption_matches_uninterrupted(tmp_path, lcrec_dataset, lcrec_index, tiny_model_dir):
    from safetensors.torch import load_file

    from semid.gen.lcrec import train_lcrec

    config = tiny_config(tiny_model_dir, tasks=("seqrec", "text"), max_per_task=12)
    full = train_lcrec(lcrec_dataset, lcrec_index, tmp_path / "a", config, progress=False)
    part = train_lcrec(lcrec_dataset, lcrec_index, tmp_path / "b", config, progress=False,
                       checkpoint_steps=1, stop_after_steps=2)
    assert part["stopped"] == "budget" and part["steps"] == 2 and not part["finished"]
    with pytest.raises(ArtifactError, match="resume"):
        train_lcrec(lcrec_dataset, lcrec_index, tmp_path / "b", config, progress=False)
    done = train_lcrec(lcrec_dataset, lcrec_index, tmp_path / "b", config, resume=True, progress=False)
    assert done["finished"] and done["steps"] == full["steps"]
    a = load_file(str(tmp_path / "a" / "model" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_budget_stops_training_and_saves(tmp_path, lcrec_dataset, lcrec_index, tiny_model_dir):
    from semid.gen.lcrec import train_lcrec

    config = tiny_config(tiny_model_dir, tasks=("seqrec",), max_per_task=40, budget_minutes=1e-6)
    outcome = train_lcrec(lcrec_dataset, lcrec_index, tmp_path / "r", config, progress=False)
    assert outcome["stopped"] == "budget" and not outcome["finished"] and outcome["steps"] <= 1
    assert (tmp_path / "r" / "model" / "lcrec.json").exists()


def test_long_prompts_drop_oldest_history_and_log_it(tmp_path, lcrec_dataset, lcrec_index, tiny_model_dir, caplog):
    from semid.gen.lcrec import train_lcrec

    config = tiny_config(tiny_model_dir, tasks=("seqrec",), max_per_task=30, max_length=170)
    with caplog.at_level(logging.WARNING, logger="semid.gen.lcrec"):
        train_lcrec(lcrec_dataset, lcrec_index, tmp_path / "r", config, progress=False)
    assert any("dropped" in r.getMessage() and "oldest history" in r.getMessage() for r in caplog.records)

    from semid.gen.lcrec import load_lcrec_run

    recommender = load_lcrec_run(tmp_path / "r", num_beams=3)
    long_history = lcrec_dataset.items.item_ids[:20]
    assert len(recommender.prompt_ids(long_history)) <= 170 - recommender.tables.max_steps
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="semid.gen.lcrec"):
        assert len(recommender.recommend([long_history], 3)[0]) == 3
    assert any("dropped the" in r.getMessage() for r in caplog.records)
