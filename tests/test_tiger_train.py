"""TIGER training runs: checkpoints, early-stopping log, resume after a kill, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import semid
from semid.data.dataset import Dataset, Sequences, save_dataset
from semid.errors import ArtifactError, ParameterError, UnknownItemError
from semid.evaluation import leave_one_out
from semid.gen.runs import open_run
from semid.gen.tiger.config import TigerConfig
from semid.gen.tiger.recommender import load_tiger
from semid.gen.tiger.train import train_tiger

TINY = dict(num_layers=1, num_decoder_layers=1, d_model=16, num_heads=2, d_kv=8, d_ff=32, user_buckets=11,
            eval_users=30, eval_beams=5, batch_size=32, warmup_steps=5, max_epochs=2)


def small_dataset(n_users: int = 80) -> Dataset:
    """The first users of the embedded dataset (all items kept): fast enough for unit tests."""
    full = semid.load_dataset("builtin:all_beauty_2023")
    seqs = full.sequences
    return Dataset("beauty-small", full.items, Sequences(seqs.user_ids[:n_users], seqs.items[:n_users]))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiger")
    dataset = small_dataset()
    save_dataset(dataset, root / "data")
    split = leave_one_out(dataset)
    tokenizer = semid.make("random").fit(dataset.items, split.train_sequences)
    tokenizer.save(root / "index")
    summary = train_tiger(dataset, tokenizer, index_path=str(root / "index"), out=str(root / "run"),
                          config=TigerConfig(**TINY), progress=False)
    return root, dataset, tokenizer, summary


def test_run_directory_records_index_log_and_checkpoints(setup):
    root, _, tokenizer, summary = setup
    assert summary["stopped"] == "max_epochs" and summary["epochs"] == 2
    run = open_run(root / "run")
    assert run.model_type == "tiger" and run.fingerprint == tokenizer.fingerprint
    events = [record["event"] for record in run.read_log()]
    assert events == ["start", "epoch", "valid", "epoch", "valid", "stop"]
    valid = [r for r in run.read_log() if r["event"] == "valid"]
    assert all(r["users"] == 30 and 0.0 <= r["ndcg@10"] <= 1.0 for r in valid)
    for name in ("best", "last"):
        assert run.has_checkpoint(name)
    assert (run.checkpoint_path("last") / "training.pt").exists()


def test_recommendations_are_distinct_catalogue_items(setup):
    root, dataset, tokenizer, _ = setup
    recommender = load_tiger(root / "run")
    history = dataset.sequences.items[0][:3]
    [ranked] = recommender.recommend([history], 10, users=["u"])
    assert len(ranked) == 10 and len(set(ranked)) == 10
    assert all(item in dataset.items for item in ranked)
    [filtered] = recommender.recommend([history], 10, exclude=[set(ranked[:3])])
    assert not set(ranked[:3]) & set(filtered) and len(filtered) == 10
    # Excluding every item of the first pass's 20 beams forces the second pass (10 + 20 beams):
    # its list is the 30-beam ranking without the excluded items, and the other user keeps hers.
    [beams20] = recommender.recommend([history], 20)
    other = dataset.sequences.items[1][:3]
    crowded, untouched = recommender.recommend([history, other], 10, exclude=[set(beams20), set()])
    [beams30] = recommender.recommend([history], 30)
    assert crowded == [item for item in beams30 if item not in set(beams20)][:10] and len(crowded) == 10
    assert untouched == recommender.recommend([other], 10)[0]


def test_bad_histories_and_k(setup):
    root, dataset, _, _ = setup
    recommender = load_tiger(root / "run")
    with pytest.raises(ParameterError, match="empty"):
        recommender.recommend([[]], 5)
    with pytest.raises(UnknownItemError, match="NO-SUCH-ITEM"):
        recommender.recommend([["NO-SUCH-ITEM"]], 5)
    with pytest.raises(ParameterError, match="larger than the catalogue"):
        recommender.recommend([dataset.sequences.items[0][:2]], len(dataset.items) + 1)


def test_run_refuses_another_index(setup):
    root, dataset, _, _ = setup
    split = leave_one_out(dataset)
    other = semid.make("random", seed=1).fit(dataset.items, split.train_sequences)
    other.save(root / "other-index")
    with pytest.raises(ArtifactError, match="fingerprint"):
        load_tiger(root / "run", index_path=root / "other-index")
    with pytest.raises(ArtifactError, match="fingerprint"):
        train_tiger(dataset, other, index_path=str(root / "other-index"), out=str(root / "run"),
                    config=TigerConfig(**TINY), resume=True, progress=False)


def test_existing_run_needs_resume_or_overwrite(setup):
    root, dataset, tokenizer, _ = setup
    with pytest.raises(ArtifactError, match="--resume"):
        train_tiger(dataset, tokenizer, index_path=str(root / "index"), out=str(root / "run"),
                    config=TigerConfig(**TINY), progress=False)
    changed = TigerConfig(**{**TINY, "d_model": 32})
    with pytest.raises(ArtifactError, match="d_model"):
        train_tiger(dataset, tokenizer, index_path=str(root / "index"), out=str(root / "run"),
                    config=changed, resume=True, progress=False)


def test_corrupted_checkpoint_is_reported(setup):
    root, _, _, _ = setup
    copy = root / "corrupt-run"
    shutil.copytree(root / "run", copy)
    weights = copy / "checkpoints" / "best" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="corrupted"):
        load_tiger(copy)


def test_budget_stops_and_resume_finishes(setup):
    root, dataset, tokenizer, _ = setup
    out = root / "budget-run"
    first = train_tiger(dataset, tokenizer, index_path=str(root / "index"), out=str(out),
                        config=TigerConfig(**TINY), budget_minutes=1e-6, progress=False)
    assert first["stopped"] == "budget" and first["steps"] == 1
    second = train_tiger(dataset, tokenizer, index_path=str(root / "index"), out=str(out),
                         config=TigerConfig(**TINY), resume=True, progress=False)
    assert second["stopped"] == "max_epochs" and second["epochs"] == 2
    assert "resume" in [r["event"] for r in open_run(out).read_log()]


_CHILD = """
import sys, torch, semid
torch.set_num_threads(1)
from semid.gen.tiger.config import TigerConfig
from semid.gen.tiger.train import train_tiger
root = sys.argv[1]
config = TigerConfig(**{tiny!r}, checkpoint_minutes=1e-9)
dataset = semid.load_dataset(root + "/data")
tokenizer = semid.load(root + "/index")
train_tiger(dataset, tokenizer, index_path=root + "/index", out=root + "/killed-run", config=config, progress=False)
"""


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(setup):
    """SIGKILL mid-epoch (checkpoints after every batch), resume, compare with an uninterrupted run."""
    root, dataset, tokenizer, _ = setup
    config = dict(TINY, max_epochs=1, checkpoint_minutes=1e-9)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-c", _CHILD.format(tiny=dict(TINY, max_epochs=1)), str(root)], env=env)
    state_file = root / "killed-run" / "checkpoints" / "last" / "state.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and child.poll() is None:
            if state_file.exists():
                try:
                    if json.loads(state_file.read_text())["loop"]["batch"] >= 3:
                        break
                except (json.JSONDecodeError, OSError):
                    pass
            time.sleep(0.05)
        assert child.poll() is None, "training finished before it could be killed"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    killed_at = json.loads(state_file.read_text())["loop"]["batch"]
    assert killed_at >= 3
    resumed = train_tiger(dataset, tokenizer, index_path=str(root / "index"), out=str(root / "killed-run"),
                          config=TigerConfig(**config), resume=True, progress=False)
    straight = train_tiger(dataset, tokenizer, index_path=str(root / "index"), out=str(root / "straight-run"),
                           config=TigerConfig(**config), progress=False)
    assert resumed["steps"] == straight["steps"]
    a = load_tiger(root / "killed-run", checkpoint="last").model.state_dict()
    b = load_tiger(root / "straight-run", checkpoint="last").model.state_dict()
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    assert resumed["epochs"] == 1
    leftovers = [p.name for p in (root / "killed-run" / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []  # half-written staging directories of the kill are cleaned up


def test_fast_stepper_ranks_like_the_model_forward(setup, monkeypatch):
    """TIGER decodes with FastT5Stepper; on the block-causal encoder it must rank like T5Stepper."""
    import semid.gen.decoding.t5_stepper as steppers

    root, dataset, _, _ = setup
    recommender = load_tiger(root / "run")
    histories = [seq[:-1][-20:] for seq in dataset.sequences.items[:12]]
    users = dataset.sequences.user_ids[:12]
    fast = recommender.recommend(histories, 10, users=users)
    monkeypatch.setattr(steppers, "FastT5Stepper", steppers.T5Stepper)
    reference = recommender.recommend(histories, 10, users=users)
    assert fast == reference


def test_hybrid_recipe_trains_a_bidirectional_model_that_decodes_like_the_forward(setup, tmp_path, monkeypatch):
    """recipe=hybrid: every target once per epoch, a bidirectional encoder at inference."""
    import semid.gen.decoding.t5_stepper as steppers

    root, dataset, tokenizer, _ = setup
    packed = train_tiger(dataset, tokenizer, index_path=str(root / "index"), out=str(tmp_path / "packed"),
                         config=TigerConfig(**{**TINY, "max_epochs": 1}, recipe="packed"), progress=False)
    config = TigerConfig(**{**TINY, "max_epochs": 1})  # the default recipe is hybrid, attention auto -> full
    assert config.recipe == "hybrid" and config.attention == "full"
    summary = train_tiger(dataset, tokenizer, index_path=str(root / "index"), out=str(tmp_path / "hybrid"),
                          config=config, progress=False)
    assert summary["training_targets_per_epoch"] == packed["training_targets_per_epoch"]
    assert summary["windows_per_epoch"] > packed["windows_per_epoch"]
    recommender = load_tiger(tmp_path / "hybrid")
    assert recommender.model.config.tiger_encoder_attention == "full"
    histories = [seq[:-1][-20:] for seq in dataset.sequences.items[:12]]
    users = dataset.sequences.user_ids[:12]
    fast = recommender.recommend(histories, 10, users=users)
    monkeypatch.setattr(steppers, "FastT5Stepper", steppers.T5Stepper)
    assert fast == recommender.recommend(histories, 10, users=users)
