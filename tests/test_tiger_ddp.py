"""Data-parallel TIGER training: 2 CPU processes (gloo) under torchrun and under
`accelerate launch`, tiny config."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import semid
from semid.data.dataset import Dataset, Sequences, save_dataset
from semid.evaluation import leave_one_out
from semid.gen.runs import open_run


def _launcher(name: str) -> list[str]:
    """Command prefix that starts 2 local processes with ``name`` on a free port."""
    with socket.socket() as probe:  # a free port, so parallel DDP tests do not collide
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    if name == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
                "--master_addr=127.0.0.1", f"--master_port={port}"]
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("the accelerate console script is not installed next to this Python")
    # --multi_gpu starts the processes through torch.distributed; without a GPU they join over gloo.
    return [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--main_process_port", port, "--mixed_precision", "no", "--dynamo_backend", "no"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_process_training(tmp_path, launcher):
    full = semid.load_dataset("builtin:all_beauty_2023")
    seqs = full.sequences
    dataset = Dataset("beauty-small", full.items, Sequences(seqs.user_ids[:80], seqs.items[:80]))
    save_dataset(dataset, tmp_path / "data")
    split = leave_one_out(dataset)
    semid.make("random").fit(dataset.items, split.train_sequences).save(tmp_path / "index")
    semid_script = Path(sys.executable).parent / "semid"
    settings = ["num_layers=1", "num_decoder_layers=1", "d_model=16", "num_heads=2", "d_kv=8", "d_ff=32",
                "user_buckets=11", "eval_users=20", "eval_beams=5", "batch_size=64"]
    command = [
        *_launcher(launcher), str(semid_script), "train", "tiger", "--data", str(tmp_path / "data"),
        "--index", str(tmp_path / "index"), "--out", str(tmp_path / "run"), "--max-epochs", "1", "--quiet",
        *[arg for s in settings for arg in ("--set", s)],
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [json.loads(block) for block in _json_blocks(result.stdout)]
    assert len(summaries) == 1  # rank 0 reports
    assert summaries[0]["stopped"] == "max_epochs" and summaries[0]["epochs"] == 1
    run = open_run(tmp_path / "run")
    start = next(r for r in run.read_log() if r["event"] == "start")
    assert start["world_size"] == 2
    assert run.has_checkpoint("best") and run.has_checkpoint("last")


def _json_blocks(text: str) -> list[str]:
    blocks, depth, current = [], 0, []
    for line in text.splitlines():
        if line.startswith("{"):
            depth, current = 1, [line]
            continue
        if depth:
            current.append(line)
            if line.startswith("}"):
                blocks.append("\n".join(current))
                depth = 0
    return blocks
