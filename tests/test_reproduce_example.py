"""examples/reproduce_beauty.py end to end on the embedded dataset (seconds, paper-size TIGER)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "examples" / "reproduce_beauty.py"), "--data", "builtin:all_beauty_2023",
           "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results.md"), "--skip-sasrec",
           "--budget-minutes", "0.03", "--valid-users", "10", "--eval-users", "10", "--quiet", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


def test_reproduction_trains_evaluates_resumes_and_reports_a_missing_input(tmp_path):
    import numpy as np

    import semid
    from semid.embeddings import save_embeddings

    items = semid.load_dataset("builtin:all_beauty_2023").items.item_ids
    text = tmp_path / "text.npz"  # plumbing only: the letter index must fail on its missing CF input first
    save_embeddings(text, list(items), np.random.default_rng(0).normal(size=(len(items), 8)).astype(np.float32),
                    {"model": "random-test-vectors"})
    done = _run(tmp_path, "--indexes", "collaborative,letter", "--embeddings", str(text),
                "--cf-embeddings", str(tmp_path / "none.npz"))
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    trained = results["TIGER / collaborative"]
    assert trained["evaluation"]["n_users"] == 10
    assert 0.0 <= trained["evaluation"]["metrics"]["recall@10"] <= 1.0
    assert "needs CF item embeddings" in results["TIGER / letter"]["error"]  # named, and the others still ran
    table = (tmp_path / "results.md").read_text()
    assert "| TIGER / collaborative (semid) |" in table and "TIGER (paper) (published)" in table
    assert "TIGER / letter (semid) **FAILED in the latest invocation" in table
    assert "command 1 |" in table and "Command 1: `" in table  # each row names the command that measured it
    first_seconds = trained["train_seconds_total"]

    again = _run(tmp_path, "--indexes", "collaborative")  # resumes the run, keeps the totals
    assert again.returncode == 0, again.stderr[-2000:]
    log = (tmp_path / "work" / "tiger-collaborative" / "train_log.jsonl").read_text()
    assert '"event": "resume"' in log
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    assert results["TIGER / collaborative"]["train_seconds_total"] > first_seconds
