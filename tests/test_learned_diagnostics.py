"""Diagnostics: level usage, prefix distribution, coherence, full report, plot."""

from __future__ import annotations

import json

import numpy as np
import pytest

import semid
from semid.data import ItemTable
from semid.diagnostics import coherence, learned_diagnostics, level_usage, plot_level_usage, prefix_distribution
from semid.errors import DataError


def test_level_usage_counts_and_perplexity():
    codes = np.array([[0, 1], [0, 2], [1, -1], [1, 3]])
    usage = level_usage(codes, [4, 4])
    assert usage[0]["used"] == 2 and usage[0]["utilization"] == 0.5
    assert usage[0]["perplexity"] == pytest.approx(2.0)  # two codes, equally used
    assert usage[1]["items"] == 3 and usage[1]["used"] == 3 and usage[1]["perplexity"] == pytest.approx(3.0)
    assert usage[0]["max_share"] == 0.5


def test_prefix_distribution():
    codes = np.array([[0, 0], [0, 1], [0, 2], [1, 0]])
    first, full = prefix_distribution(codes)
    assert first == {"length": 1, "prefixes": 2, "mean": 2.0, "median": 2.0, "p90": 2.8, "max": 3, "singleton_share": 0.5}
    assert full["prefixes"] == 4 and full["max"] == 1


def test_coherence_separates_clustered_vectors():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 16))
    labels = rng.integers(0, 5, 300)
    vectors = centers[labels] + 0.2 * rng.normal(size=(300, 16))
    codes = np.stack([labels, np.arange(300)], axis=1)
    (row,) = coherence(codes, vectors, [1])
    assert row["same_prefix"] > 0.9 and row["random"] < 0.5
    shuffled = coherence(np.stack([rng.permutation(labels), np.arange(300)], 1), vectors, [1])[0]
    assert abs(shuffled["same_prefix"] - shuffled["random"]) < 0.1
    assert coherence(codes, vectors, [1]) == [row]  # deterministic


def _fitted_rqkmeans():
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(8, 12))[rng.integers(0, 8, 150)] + 0.3 * rng.normal(size=(150, 12))).astype(np.float32)
    items = ItemTable({"item_id": f"i{k}"} for k in range(150))
    return semid.make("rqkmeans", n_levels=2, codebook_size=8).fit(items, embeddings=x), items, x


def test_learned_report_is_json_and_complete():
    tok, _, x = _fitted_rqkmeans()
    cf = np.random.default_rng(2).normal(size=(150, 4)).astype(np.float32)
    report = learned_diagnostics(tok, embeddings=x, cf_embeddings=cf)
    json.dumps(report)
    assert report["semantic_levels"] == 2 and len(report["levels"]) == 3
    assert report["collisions"]["rate_before_resolution"] == tok.info_["collision_rate_before"]
    assert report["reconstruction"]["recon_mse_given"] == pytest.approx(tok.info_["recon_mse"], rel=1e-3)
    text = report["coherence"]["text"]
    assert [c["length"] for c in text] == [1, 2] and text[0]["same_prefix"] > text[0]["random"]
    assert len(report["coherence"]["cf"]) == 2


def test_report_without_embeddings_and_for_classic_schemes(all_beauty):
    tok, _, _ = _fitted_rqkmeans()
    report = learned_diagnostics(tok)
    assert report["coherence"] == {"text": None, "cf": None}
    assert report["reconstruction"]["recon_mse"] == tok.info_["recon_mse"]
    classic = semid.make("independent").fit(all_beauty.items)
    report = learned_diagnostics(classic)
    assert report["collisions"]["rate_before_resolution"] is None and report["reconstruction"] is None


def test_misaligned_vectors_are_rejected():
    tok, _, x = _fitted_rqkmeans()
    with pytest.raises(DataError, match=r"expected \(150, dim\)"):
        learned_diagnostics(tok, embeddings=x[:10])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        learned_diagnostics(tok, cf_embeddings=bad)


def test_plot_level_usage(tmp_path):
    tok, _, _ = _fitted_rqkmeans()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match="needs matplotlib"):
            plot_level_usage(tok, tmp_path / "usage.png")
        return
    path = plot_level_usage(tok, tmp_path / "usage.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
