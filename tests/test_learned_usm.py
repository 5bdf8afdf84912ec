"""usm: Sinkhorn-Knopp uniform mapping, unique fixed-length codes, fallback, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import semid
from _learned_testkit import clustered
from _learned_testkit import one_torch_thread  # noqa: F401  (autouse fixture)
from semid.quantize.sinkhorn import sinkhorn_assign, sinkhorn_log

SMALL = {"n_levels": 2, "codebook_size": 8, "hidden": [32], "code_dim": 8, "epochs": 3, "batch_size": 64,
         "eval_every": 3}


def test_sinkhorn_spreads_points_uniformly_where_nearest_code_does_not():
    rng = np.random.default_rng(0)
    # 64 points, 8 codes, every point closest to code 0: argmin would put all on one code.
    distances = torch.from_numpy(rng.uniform(0.5, 1.0, size=(64, 8)))
    distances[:, 0] = 0.1
    assert torch.bincount(distances.argmin(1), minlength=8).max() == 64
    counts = torch.bincount(sinkhorn_assign(distances, epsilon=0.003, n_iter=100), minlength=8)
    assert counts.max() <= 10 and counts.min() >= 6


@pytest.mark.parametrize("epsilon", [1e-4, 0.003, 0.05])
def test_log_domain_sinkhorn_stays_finite(epsilon):
    distances = torch.from_numpy(np.random.default_rng(1).uniform(0, 100, size=(40, 5)))
    log_q = sinkhorn_log(distances, epsilon, 200)
    assert torch.isfinite(log_q).all()
    plan = log_q.exp()
    torch.testing.assert_close(plan.sum(1), torch.full((40,), 1 / 40, dtype=plan.dtype))
    if epsilon >= 0.05:  # converged: every code carries 1/K of the mass
        torch.testing.assert_close(plan.sum(0), torch.full((5,), 1 / 5, dtype=plan.dtype), atol=1e-3, rtol=0)
    else:  # the plain-domain kernel exp(-d/eps) underflows to zero here
        assert float(torch.exp(-distances / epsilon).sum(1).min()) == 0.0


@pytest.fixture(scope="module")
def fitted():
    items, x = clustered()
    return semid.make("usm", **{**SMALL, "codebook_size": 32}).fit(items, embeddings=x), items, x


def test_codes_are_unique_and_fixed_length(fitted):
    tok, items, _ = fitted
    assert tok.codes.shape == (len(items), 2)  # no prefix holds > 32 items: no extra level
    assert len({tuple(c) for c in tok.codes.tolist()}) == len(items)
    info = tok.info_
    assert info["extra_level"] is False and info["overflow_prefixes"] == 0
    assert tok.collisions_resolved_ == info["collisions_nearest"]
    assert info["collision_rate_before"] == round(info["collisions_nearest"] / len(items), 5)
    assert info["collisions_after_sinkhorn"] <= info["collisions_nearest"]
    assert tok.vocab.level_sizes == (32, 32)


def test_overflowing_prefix_falls_back_to_an_extra_level():
    items, x = clustered(n=120)
    tok = semid.make("usm", **{**SMALL, "codebook_size": 4}).fit(items, embeddings=x)  # 16 codes for 120 items
    assert tok.info_["overflow_prefixes"] > 0 and tok.info_["extra_level"] is True
    assert len({tuple(c) for c in tok.codes.tolist()}) == len(items)
    assert tok.trie.is_prefix_free


def test_cold_start_after_load(fitted, tmp_path):
    tok, _, x = fitted
    loaded = semid.load(tok.save(tmp_path / "usm"))
    assert loaded.scheme == "usm"
    code = loaded.encode_new(embedding=x[7])
    assert code == tok.encode_new(embedding=x[7]) and len(code) == 2


def test_defaults_follow_lc_rec():
    params = semid.make("usm").get_params()
    assert params["n_levels"] == 4 and params["codebook_size"] == 256 and params["sk_epsilon"] == 0.003
