"""Data-parallel training of the parallel generator: 2 CPU processes (gloo) under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import semid
from semid.data.dataset import Dataset, Sequences, save_dataset
from semid.evaluation import leave_one_out
from semid.gen.runs import open_run
from test_tiger_ddp import _json_blocks, _launcher


@pytest.mark.slow
def test_two_process_training(tmp_path):
    full = semid.load_dataset("builtin:all_beauty_2023")
    seqs = full.sequences
    dataset = Dataset("beauty-small", full.items, Sequences(seqs.user_ids[:120], seqs.items[:120]))
    save_dataset(dataset, tmp_path / "data")
    split = leave_one_out(dataset, max_history=6)
    x = np.random.default_rng(0).normal(size=(len(dataset.items), 16)).astype(np.float32)
    semid.make("pq", m=4, codebook_size=8, n_iter=5, disambiguation="always").fit(
        dataset.items, embeddings=x).save(tmp_path / "index")
    settings = ["n_layers=1", "d_model=16", "n_heads=2", "d_ff=32", "max_history=6", "batch_size=16",
                "eval_users=20", "warmup_steps=2"]
    command = [*_launcher("torchrun"), str(Path(sys.executable).parent / "semid"), "train", "rpg", "--data",
               str(tmp_path / "data"), "--index", str(tmp_path / "index"), "--out", str(tmp_path / "run"),
               "--max-epochs", "2", "--quiet", *[arg for s in settings for arg in ("--set", s)]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [json.loads(block) for block in _json_blocks(result.stdout)]
    assert len(summaries) == 1 and summaries[0]["stopped"] == "max_epochs"  # rank 0 reports
    run = open_run(tmp_path / "run")
    log = run.read_log()
    assert next(r for r in log if r["event"] == "start")["world_size"] == 2
    epochs = [r for r in log if r["event"] == "epoch"]
    users = sum(1 for s in split.train_sequences if len(s) >= 2)
    assert epochs[-1]["step"] == 2 * ((-(-users // 16)) // 2)  # each rank takes half of every epoch's batches
    assert run.has_checkpoint("best") and run.has_checkpoint("last")
