"""The ``pq`` scheme: whitened PCA, bad inputs, cold start (the conformance suite covers the rest)."""

from __future__ import annotations

import numpy as np
import pytest

import semid
from semid.errors import ParameterError
from semid.schemes.pq import whitened_pca


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset("builtin:all_beauty_2023")


def low_rank_unit_rows(n: int, d: int, rank: int, seed: int = 0) -> np.ndarray:
    """Unit-norm rows spanning only ``rank`` directions: the shape of sentence embeddings' spectrum, exaggerated."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_whitened_pca_gives_unit_variance_on_the_kept_axes():
    x = np.random.default_rng(1).normal(size=(500, 12)).astype(np.float32) * np.arange(1, 13, dtype=np.float32)
    matrix, mean = whitened_pca(x, 6)
    y = (x - mean) @ matrix.T
    np.testing.assert_allclose(y.var(axis=0, ddof=1), np.ones(6), rtol=1e-4)
    np.testing.assert_allclose(np.corrcoef(y.T), np.eye(6), atol=1e-4)


def test_full_width_whitening_of_rank_deficient_embeddings_stays_finite(data):
    # faiss' PCAMatrix(eigen_power=-0.5) returned infinities here, and OPQ then refused the NaNs
    x = low_rank_unit_rows(len(data.items), 16, rank=10)
    tok = semid.make("pq", m=4, codebook_size=8, n_iter=5, pca_dim=16, opq=True,
                     disambiguation="always").fit(data.items, embeddings=x)
    assert np.isfinite(tok.state_["pca_matrix"]).all()
    assert tok.codes.shape == (len(data.items), 5)


def test_cold_start_code_of_a_known_embedding_is_its_own(data):
    x = np.random.default_rng(0).normal(size=(len(data.items), 16)).astype(np.float32)
    tok = semid.make("pq", m=4, codebook_size=8, n_iter=5, pca_dim=8).fit(data.items, embeddings=x)
    own = tok.encode(data.items.item_ids[3])
    assert tok.encode_new(embedding=x[3])[:4] == own[:4]


@pytest.mark.parametrize("params, width, message", [
    (dict(m=5), 16, "the embedding width 16 is not divisible by m=5; choose m among \\[1, 2, 4, 8, 16\\]"),
    (dict(m=4, codebook_size=1000), 16, "codebook_size 1000 needs at least that many items"),
    (dict(m=4, pca_dim=32), 16, "pca_dim 32 is more than the data supports"),
])
def test_bad_settings_get_one_clear_error(data, params, width, message):
    x = np.random.default_rng(0).normal(size=(len(data.items), width)).astype(np.float32)
    with pytest.raises(ParameterError, match=message):
        semid.make("pq", n_iter=2, **params).fit(data.items, embeddings=x)
