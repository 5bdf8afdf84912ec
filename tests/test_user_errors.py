"""Every user error the one-house review found as a traceback: now one line on stderr, exit 1, nothing lost."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner

from semid.cli.main import cli, one_line

DATA = "builtin:all_beauty_2023"


def _invoke(*args, cwd=None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, list(args))
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli, list(args))
    finally:
        os.chdir(old)


def _one_error_line(result, text):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and text in lines[0], result.stderr


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    out = tmp_path_factory.mktemp("idx") / "index"
    assert _invoke("build-index", "--data", DATA, "--scheme", "random", "--out", str(out)).exit_code == 0
    return out


def test_output_under_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    result = _invoke("build-index", "--data", DATA, "--scheme", "random", "--out", str(tmp_path / "f" / "idx"))
    _one_error_line(result, "is a file, not a directory")


def test_output_in_an_unwritable_place():
    result = _invoke("build-index", "--data", DATA, "--scheme", "random", "--out", "/proc/semid-idx")
    _one_error_line(result, "cannot create /proc/semid-idx")


def test_overwrite_of_the_current_directory_is_refused_and_leaves_nothing(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = _invoke("build-index", "--data", DATA, "--scheme", "random", "--out", ".", "--overwrite", cwd=tmp_path)
    _one_error_line(result, "current directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]  # no hidden staging folders either
    assert not [p for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}")]


def test_overwrite_replaces_only_a_semid_output_of_the_same_kind(tmp_path, index):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"\xff\xd8")
    result = _invoke("build-index", "--data", DATA, "--scheme", "random", "--out", str(folder), "--overwrite")
    _one_error_line(result, "it has no tokenizer.json")
    assert (folder / "a.jpg").read_bytes() == b"\xff\xd8"
    run_like = _invoke("train", "tiger", "--data", DATA, "--index", str(index), "--out", str(index), "--overwrite",
                       "--max-epochs", "1")
    _one_error_line(run_like, "not a semid run")
    assert (index / "tokenizer.json").exists()


def test_decode_of_garbage(index):
    _one_error_line(_invoke("decode", str(index), "garbage"), "neither a token string")


@pytest.mark.parametrize("device, text", [("banana", "unknown device 'banana'"), ("cuda", "no CUDA GPU")])
def test_bad_devices(device, text):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    _one_error_line(_invoke("evaluate", "popularity", "--data", DATA, "--device", device), text)


def test_evaluate_max_history_zero():
    _one_error_line(_invoke("evaluate", "popularity", "--data", DATA, "--max-history", "0"), "--max-history must be >= 1")


def test_ask_with_zero_new_tokens_is_a_usage_error(tmp_path):
    result = _invoke("ask", str(tmp_path), "hello", "--max-new-tokens", "0")
    assert result.exit_code == 2 and "--max-new-tokens" in result.output


def test_embeddings_that_are_not_npz(tmp_path):
    bad = tmp_path / "vectors.csv"
    bad.write_text("1,2,3\n")
    result = _invoke("build-index", "--data", DATA, "--scheme", "rqkmeans", "--embeddings", str(bad),
                     "--out", str(tmp_path / "idx"))
    _one_error_line(result, "not a .npz embedding file")
    assert "pickle" not in result.stderr


def test_embed_checks_its_output_before_computing(tmp_path):
    (tmp_path / "f").write_text("x")
    result = _invoke("embed", "--data", DATA, "--out", str(tmp_path / "f" / "e.npz"), "--model", str(tmp_path / "none"))
    _one_error_line(result, "is a file, not a directory")  # said before the (missing) model is even looked for


def test_embed_with_fields_no_item_has(tmp_path):
    result = _invoke("embed", "--data", DATA, "--out", str(tmp_path / "e.npz"), "--fields", "bogus", "--no-cache")
    _one_error_line(result, "none of the 356 items has any of the fields bogus")
    assert not (tmp_path / "e.npz").exists()


def test_identical_embeddings_are_warned_about(tmp_path, caplog):
    from semid.embeddings import read_embeddings, save_embeddings

    save_embeddings(tmp_path / "z.npz", ["a", "b", "c"], np.zeros((3, 4)))
    with caplog.at_level("WARNING"):
        read_embeddings(tmp_path / "z.npz")
    assert "same embedding (all zeros)" in caplog.text


def test_multi_line_messages_are_joined_not_cut():
    assert one_line("first\n  second\n\nthird") == "first; second; third"


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    """As root every path is writable, so the operating system's answer is simulated for one folder."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(locked) else real_access(path, mode))
    result = _invoke("build-index", "--data", DATA, "--scheme", "random", "--out", str(locked / "idx"))
    _one_error_line(result, "is not writable")
    started = __import__("time").monotonic()
    embedded = _invoke("embed", "--data", DATA, "--out", str(locked / "e.npz"), "--no-cache")
    _one_error_line(embedded, "is not writable")
    assert __import__("time").monotonic() - started < 5  # refused before minutes of embedding
    assert list(locked.iterdir()) == []
