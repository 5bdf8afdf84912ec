"""build-index --embeddings with a learned scheme, then inspect with diagnostics and a plot."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

import semid
from semid.cli.main import cli
from semid.embeddings import save_embeddings


def test_build_index_and_inspect_learned_scheme(all_beauty, tmp_path):
    rng = np.random.default_rng(0)
    emb = tmp_path / "e.npz"
    save_embeddings(emb, all_beauty.items.item_ids, rng.normal(size=(len(all_beauty.items), 16)).astype(np.float32))
    runner = CliRunner()
    out = tmp_path / "idx"
    result = runner.invoke(cli, ["build-index", "--scheme", "rqvae", "--data", "builtin:all_beauty_2023",
                                 "--embeddings", str(emb), "--out", str(out), "--set", "n_levels=2",
                                 "--set", "codebook_size=8", "--set", "epochs=2", "--set", "hidden=[16]"])
    assert result.exit_code == 0, result.output
    tok = semid.load(out)
    assert tok.scheme == "rqvae" and tok.encode_new(embedding=np.zeros(16, np.float32))
    result = runner.invoke(cli, ["inspect", str(out), "--embeddings", str(emb), "--plot", str(tmp_path / "u.png")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    diag = summary["diagnostics"]
    assert diag["semantic_levels"] == 2 and diag["coherence"]["text"][0]["pairs"] > 0
    assert (tmp_path / "u.png").read_bytes()[:4] == b"\x89PNG"


def test_build_index_with_misaligned_embeddings_fails_cleanly(all_beauty, tmp_path):
    emb = tmp_path / "e.npz"
    ids = all_beauty.items.item_ids[:-1]  # one item missing
    save_embeddings(emb, ids, np.ones((len(ids), 4), np.float32))
    result = CliRunner().invoke(cli, ["build-index", "--scheme", "rqkmeans", "--data", "builtin:all_beauty_2023",
                                      "--embeddings", str(emb), "--out", str(tmp_path / "idx")])
    assert result.exit_code == 1 and "1 of 356 items have no embedding" in result.output
    assert not (tmp_path / "idx").exists()
