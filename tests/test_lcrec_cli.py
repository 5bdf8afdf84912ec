"""`semid train lcrec`, `semid evaluate` / `semid recommend` on an LC-Rec run, and 2-process DDP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from _lcrec_tiny import lcrec_dataset, lcrec_index, tiny_model_dir  # noqa: F401
from semid.cli.main import cli


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, lcrec_index):
    return lcrec_index.save(tmp_path_factory.mktemp("lcrec_cli") / "index")


def _train_args(index_dir, out, base, *extra):
    return ["train", "lcrec", "--data", "builtin:all_beauty_2023", "--index", str(index_dir), "--out", str(out),
            "--base-model", str(base), "--tasks", "seqrec,item2index,text", "--max-per-task", "4",
            "--batch-size", "4", "--max-length", "256", "--num-beams", "5", "--embed-init", "mean", "--quiet", *extra]


def test_train_evaluate_recommend(tmp_path, index_dir, tiny_model_dir, lcrec_dataset):
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(cli, _train_args(index_dir, out, tiny_model_dir))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["finished"] is True

    result = runner.invoke(cli, ["evaluate", str(out), "--data", "builtin:all_beauty_2023", "--users", "4",
                                 "--k", "1,5", "--beams", "5"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model_type"] == "lcrec" and report["n_users"] == 4
    assert report["metrics"]["invalid_rate"] == 0.0

    result = runner.invoke(cli, ["evaluate", str(out), "--data", "builtin:all_beauty_2023", "--users", "2",
                                 "--k", "5", "--beams", "5", "--decoding", "d3", "--assistant", "popularity"])
    assert result.exit_code == 0, result.output

    history = lcrec_dataset.sequences.items[0][:3]
    result = runner.invoke(cli, ["recommend", str(out), "--history", ",".join(history), "--k", "3", "--beams", "5"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line.split("\t")[1] in lcrec_dataset.items for line in lines)

    # collapse diagnostics: the same checks as TIGER's, for a causal LM
    result = runner.invoke(cli, ["diagnose", "lcrec", str(out), "--data", "builtin:all_beauty_2023", "--users", "6",
                                 "--beams", "5"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    nll = report["position_nll"]
    n_levels = len(nll["unigram"])
    assert len(nll["model"]) == len(nll["model_full_vocab"]) == n_levels and report["users"] == 6
    # Renormalising over one level's tokens can only raise a token's probability.
    assert all(w <= f + 1e-6 for w, f in zip(nll["model"], nll["model_full_vocab"]))
    assert report["verdict"] in {"healthy", "collapsed"} and report["swap_history_kl"] >= 0
    assert {"distinct@10", "swap_overlap@10", "collapse_floor"} <= set(report)

    # plain-text answers of the tuned and the base model (the tiny random model babbles; plumbing only)
    result = runner.invoke(cli, ["ask", str(out), "Name a fruit.", "--base", "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)["Name a fruit."]
    assert set(answers) == {"tuned", "base"} and all(isinstance(a, str) for a in answers.values())
    result = runner.invoke(cli, ["ask", str(index_dir), "Hi"])
    assert result.exit_code == 1 and "not a semid run" in result.output

    # an existing run without --resume / --overwrite
    result = runner.invoke(cli, _train_args(index_dir, out, tiny_model_dir))
    assert result.exit_code == 1 and "already exists" in result.output


@pytest.mark.parametrize("args, message", [
    (["--tasks", ""], "task list is empty"),
    (["--tasks", "seqrec,nope"], "unknown LC-Rec task 'nope'"),
    (["--lora-r", "0"], "lora_r"),
])
def test_bad_settings_exit_1(tmp_path, index_dir, tiny_model_dir, args, message):
    base = _train_args(index_dir, tmp_path / "run", tiny_model_dir)
    # later options win in click, so appending overrides the defaults above
    result = CliRunner().invoke(cli, [*base, *args])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert not (tmp_path / "run").exists()


def test_missing_base_model_exit_1(tmp_path, index_dir):
    result = CliRunner().invoke(cli, _train_args(index_dir, tmp_path / "run", tmp_path / "no_model"))
    assert result.exit_code == 1 and "does not exist" in result.output


@pytest.mark.slow
def test_two_process_ddp_training(tmp_path, index_dir, tiny_model_dir):
    """`accelerate launch` with 2 CPU processes (gloo): each process takes half of every global batch.

    accelerate's ``--cpu`` flag starts a single process; ``--multi_gpu`` starts the
    processes through torch.distributed, and without a GPU they join over gloo.
    """
    semid_script = shutil.which("semid", path=str(Path(sys.executable).parent))
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if semid_script is None or launcher is None:
        pytest.skip("the semid / accelerate console scripts are not installed next to this Python")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    with socket.socket() as probe:  # a free port, so parallel DDP tests do not collide
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--main_process_port", str(port),
               "--mixed_precision", "no", "--dynamo_backend", "no", semid_script,
               *_train_args(index_dir, out, tiny_model_dir, "--batch-size", "2")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout[done.stdout.index("{"):])
    assert outcome["processes"] == 2 and outcome["finished"]
    # global batch = 2 processes x 2 examples (a single process would take twice the steps)
    assert outcome["steps"] == -(-outcome["examples"] // 4)
    assert (out / "model" / "adapter" / "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path, index_dir, tiny_model_dir):
    """A training process killed with SIGKILL continues from its last atomic checkpoint."""
    import signal
    import time

    semid_script = shutil.which("semid", path=str(Path(sys.executable).parent))
    if semid_script is None:
        pytest.skip("the semid console script is not installed next to this Python")
    out = tmp_path / "run"
    args = ["train", "lcrec", "--data", "builtin:all_beauty_2023", "--index", str(index_dir), "--out", str(out),
            "--base-model", str(tiny_model_dir), "--tasks", "seqrec", "--max-per-task", "40", "--batch-size", "2",
            "--max-epochs", "200", "--checkpoint-minutes", "0.0001", "--max-length", "256", "--embed-init", "mean",
            "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([semid_script, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / "checkpoints" / "last" / "manifest.json"
    deadline = time.monotonic() + 120
    while not manifest.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # let it train (and checkpoint) a little further
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert manifest.exists() and not (out / "model").exists()
    killed_at = json.loads((out / "checkpoints" / "last" / "state.json").read_text())["loop"]["step"]
    assert killed_at >= 1

    # The budget may change on resume; it bounds the wall time of this invocation.
    result = CliRunner().invoke(cli, [*args, "--resume", "--budget-minutes", "0.1"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["stopped"] == "budget" and outcome["steps"] > killed_at
    events = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    resume = next(e for e in events if e["event"] == "resume")
    assert resume["step"] >= killed_at
    assert (out / "model" / "lcrec.json").exists()


def test_a_failed_start_leaves_nothing_so_a_retry_works(tmp_path, index_dir, tiny_model_dir):
    """A base model folder without weights fails at load time: no run.json or checkpoints/ stay behind."""
    import shutil

    encoder = tmp_path / "bert"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, _train_args(index_dir, out, encoder))
    assert result.exit_code == 1 and "cannot load base model" in result.output
    assert not out.exists()
    shutil.rmtree(encoder)
    retry = CliRunner().invoke(cli, _train_args(index_dir, out, tiny_model_dir))
    assert retry.exit_code == 0, retry.output
