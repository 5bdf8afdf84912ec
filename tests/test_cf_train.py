"""CF training runs: run directory, resume, determinism, dataset refusal, learning sanity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import semid
from semid.data.dataset import Dataset, ItemTable, Sequences
from semid.errors import ArtifactError, DataError, ParameterError
from semid.evaluation import evaluate
from semid.gen.cf import CFRecommender, TrainOptions, item_embeddings, load_run, read_config, train_cf
from semid.gen.runs import dataset_identity, open_run

TINY_SASREC = {"hidden": 16, "n_blocks": 1, "max_len": 10, "batch_size": 64}
TINY_LIGHTGCN = {"hidden": 16, "n_layers": 2, "batch_size": 512}


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset("builtin:all_beauty_2023")


def _events(run, event):
    return [r for r in open_run(run).read_log() if r["event"] == event]


def test_run_directory_holds_config_weights_metrics(tmp_path, data):
    run = tmp_path / "run"
    summary = train_cf(run, data, model_name="sasrec", overrides=TINY_SASREC,
                       options=TrainOptions(max_epochs=2), progress=False)
    assert summary["epochs"] == 2 and summary["stopped"] == "max_epochs"
    config = read_config(run)
    assert config["model"] == "sasrec" and config["config"]["hidden"] == 16
    assert config["dataset"]["items_fingerprint"] == dataset_identity(data)["items_fingerprint"]
    assert [r["epoch"] for r in _events(run, "valid")] == [1, 2] and all("ndcg@10" in r for r in _events(run, "valid"))
    assert (run / "item_ids.txt").read_text().splitlines() == data.items.item_ids
    for name in ("best", "last"):
        weights = run / "checkpoints" / name / "model.safetensors"
        assert set(load_file(weights)) >= {"item_emb.weight", "pos_emb.weight"}
    assert (run / "checkpoints" / "last" / "training.pt").exists()


def test_existing_run_without_resume_is_refused(tmp_path, data):
    run = tmp_path / "run"
    train_cf(run, data, model_name="lightgcn", overrides=TINY_LIGHTGCN, options=TrainOptions(max_epochs=1), progress=False)
    with pytest.raises(ArtifactError, match="--resume"):
        train_cf(run, data, model_name="lightgcn", options=TrainOptions(max_epochs=1), progress=False)


@pytest.mark.parametrize("name,overrides", [("sasrec", TINY_SASREC), ("lightgcn", TINY_LIGHTGCN)])
def test_resume_continues_exactly_where_it_stopped(tmp_path, data, name, overrides):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_cf(straight, data, model_name=name, overrides=overrides, options=TrainOptions(max_epochs=4), progress=False)
    train_cf(split, data, model_name=name, overrides=overrides, options=TrainOptions(max_epochs=2), progress=False)
    summary = train_cf(split, data, options=TrainOptions(max_epochs=4), resume=True, progress=False)
    assert summary["epochs"] == 4
    last = "checkpoints/last/model.safetensors"
    a, b = load_file(straight / last), load_file(split / last)
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)
    assert [r["epoch"] for r in _events(split, "epoch")] == [1, 2, 3, 4]


def _reordered(data: Dataset) -> Dataset:
    records = list(reversed(data.items.records))
    return Dataset(name="reordered", items=ItemTable(records), sequences=data.sequences)


def test_resume_and_load_refuse_a_different_dataset(tmp_path, data):
    run = tmp_path / "run"
    train_cf(run, data, model_name="sasrec", overrides=TINY_SASREC, options=TrainOptions(max_epochs=1), progress=False)
    with pytest.raises(DataError, match="has other items"):
        train_cf(run, _reordered(data), options=TrainOptions(max_epochs=2), resume=True, progress=False)
    shorter = Sequences(data.sequences.user_ids, [s[:-1] if len(s) > 3 else s for s in data.sequences.items])
    with pytest.raises(DataError, match="training interactions"):
        train_cf(run, Dataset("x", data.items, shorter), options=TrainOptions(max_epochs=2), resume=True, progress=False)


def test_bad_settings_are_rejected_before_anything_is_written(tmp_path, data):
    with pytest.raises(ParameterError, match="valid settings"):
        train_cf(tmp_path / "a", data, model_name="sasrec", overrides={"hiddn": "8"}, progress=False)
    with pytest.raises(ParameterError, match="loss"):
        train_cf(tmp_path / "b", data, model_name="sasrec", overrides={"loss": "mse"}, progress=False)
    with pytest.raises(ParameterError, match="divisible"):
        train_cf(tmp_path / "c", data, model_name="sasrec", overrides={"hidden": 10, "n_heads": 3}, progress=False)
    assert not any(tmp_path.iterdir())


def test_early_stopping_stops_and_keeps_the_best_epoch(tmp_path, data):
    run = tmp_path / "run"
    summary = train_cf(run, data, model_name="lightgcn", overrides={**TINY_LIGHTGCN, "lr": 1e-9},
                       options=TrainOptions(max_epochs=50, patience=2), progress=False)
    # A learning rate of 1e-9 cannot improve validation NDCG: stop after 1 + patience epochs.
    assert summary["stopped"] == "patience" and summary["epochs"] == 3 and summary["best_epoch"] == 1
    again = train_cf(run, data, options=TrainOptions(max_epochs=50, patience=2), resume=True, progress=False)
    assert again["epochs"] == 3


def test_export_rows_follow_dataset_item_order(tmp_path, data):
    run = tmp_path / "run"
    train_cf(run, data, model_name="sasrec", overrides=TINY_SASREC, options=TrainOptions(max_epochs=1), progress=False)
    item_ids, matrix = item_embeddings(run)
    model, _, _, _ = load_run(run)
    assert item_ids == data.items.item_ids
    assert matrix.shape == (len(data.items), 16) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[5], model.item_emb.weight[6].detach().numpy())


def _training_next_item_cases(data):
    """(history, target) pairs inside the training part: s[:-3] -> s[-3]."""
    split = semid.evaluation.leave_one_out(data)
    return [(seq[:-1], seq[-1]) for seq in split.train_sequences if len(seq) >= 2]


def _popularity_recall(data, cases, k):
    counts: dict[str, int] = {}
    for seq in semid.evaluation.leave_one_out(data).train_sequences:
        for item in seq:
            counts[item] = counts.get(item, 0) + 1
    top = sorted(counts, key=lambda i: -counts[i])[:k]
    return np.mean([t in top for _, t in cases])


def test_sasrec_learns_training_transitions_beyond_popularity(tmp_path, data):
    """A trained SASRec ranks the training data's next items far above the popularity list."""
    run = tmp_path / "run"
    train_cf(run, data, model_name="sasrec", overrides={**TINY_SASREC, "hidden": 32, "dropout": 0.0, "lr": 5e-3},
             options=TrainOptions(max_epochs=40, patience=40, eval_every=40), progress=False)
    model, config, item_ids, user_ids = load_run(run, weights="last")
    recommender = CFRecommender(model, item_ids, user_ids, max_len=10)
    cases = _training_next_item_cases(data)
    lists = recommender.recommend([h for h, _ in cases], 10)
    learned = np.mean([t in top for (_, t), top in zip(cases, lists)])
    assert learned > 2 * _popularity_recall(data, cases, 10) and learned > 0.3


def test_lightgcn_scores_training_items_of_known_users_above_popularity(tmp_path, data):
    run = tmp_path / "run"
    train_cf(run, data, model_name="lightgcn", overrides={**TINY_LIGHTGCN, "lr": 0.05, "l2": 0.0},
             options=TrainOptions(max_epochs=60, patience=60, eval_every=60), progress=False)
    model, _, item_ids, user_ids = load_run(run, weights="last")
    split = semid.evaluation.leave_one_out(data)
    users = [u for u, s in zip(split.train_users, split.train_sequences) if s]
    seqs = [s for s in split.train_sequences if s]
    recommender = CFRecommender(model, item_ids, user_ids)
    lists = recommender.recommend(seqs, 10, users=users)
    learned = np.mean([len(set(s) & set(top)) / min(len(set(s)), 10) for s, top in zip(seqs, lists)])
    counts = np.bincount([item_ids.index(i) for s in seqs for i in s], minlength=len(item_ids))
    popular = {item_ids[i] for i in np.argsort(-counts, kind="stable")[:10]}
    baseline = np.mean([len(set(s) & popular) / min(len(set(s)), 10) for s in seqs])
    assert learned > 2 * baseline and learned > 0.3


def test_evaluate_protocol_runs_on_a_trained_run(tmp_path, data):
    run = tmp_path / "run"
    train_cf(run, data, model_name="sasrec", overrides=TINY_SASREC, options=TrainOptions(max_epochs=1), progress=False)
    model, config, item_ids, user_ids = load_run(run)
    result = evaluate(CFRecommender(model, item_ids, user_ids, max_len=10), data, ks=(5, 10), progress=False)
    assert result["n_users"] == len(data.sequences)
    assert 0.0 <= result["metrics"]["ndcg@10"] <= result["metrics"]["recall@10"] <= 1.0
    assert result["metrics"]["invalid_rate"] == 0.0


def test_bce_option_trains_with_sampled_negatives(tmp_path, data):
    run = tmp_path / "run"
    summary = train_cf(run, data, model_name="sasrec",
                       overrides={**TINY_SASREC, "loss": "bce", "dropout": 0.0, "lr": 5e-3},
                       options=TrainOptions(max_epochs=6, patience=6), progress=False)
    history = [r["loss"] for r in _events(run, "epoch")]
    assert summary["epochs"] == 6 and all(np.isfinite(history))
    assert history[-1] < 0.9 * history[0]  # positives separate from the sampled negatives (1.63 -> 1.34)


_CF_CHILD = """
import sys, torch, semid
torch.set_num_threads(1)
from semid.gen.cf import TrainOptions, train_cf
train_cf(sys.argv[1], semid.load_dataset("builtin:all_beauty_2023"), model_name="sasrec",
         overrides={tiny!r}, options=TrainOptions(max_epochs=40, eval_every=40, patience=40), progress=False)
"""


@pytest.mark.slow
def test_sigkilled_cf_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, data):
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    child = subprocess.Popen([sys.executable, "-c", _CF_CHILD.format(tiny=TINY_SASREC), str(killed)],
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
    state = killed / "checkpoints" / "last" / "state.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and child.poll() is None:
            try:
                if json.loads(state.read_text())["loop"]["epoch"] >= 2:
                    break
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                pass
            time.sleep(0.02)
        assert child.poll() is None, "training finished before it could be killed"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    killed_at = json.loads(state.read_text())["loop"]["epoch"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic as the killed child
    try:
        options = TrainOptions(max_epochs=killed_at + 2, eval_every=40, patience=40)
        resumed = train_cf(killed, data, options=options, resume=True, progress=False)
        train_cf(straight, data, model_name="sasrec", overrides=TINY_SASREC, options=options, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert resumed["epochs"] == killed_at + 2 and "resume" in [r["event"] for r in _events(killed, "resume")]
    a = load_file(killed / "checkpoints" / "last" / "model.safetensors")
    b = load_file(straight / "checkpoints" / "last" / "model.safetensors")
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_graph_models_validate_with_earlier_items_masked(tmp_path, data, monkeypatch):
    import semid.gen.cf.train as train_module

    seen = []
    real = train_module.evaluate

    def spy(*args, **kwargs):
        seen.append(kwargs.get("exclude_seen"))
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", spy)
    train_cf(tmp_path / "g", data, model_name="lightgcn", overrides=TINY_LIGHTGCN, options=TrainOptions(max_epochs=1),
             progress=False)
    train_cf(tmp_path / "s", data, model_name="sasrec", overrides=TINY_SASREC, options=TrainOptions(max_epochs=1),
             progress=False)
    train_cf(tmp_path / "k", data, model_name="lightgcn", overrides=TINY_LIGHTGCN,
             options=TrainOptions(max_epochs=1, exclude_seen=False), progress=False)
    assert seen == [True, False, False]
    assert _events(tmp_path / "g", "start")[0]["valid_exclude_seen"] is True
