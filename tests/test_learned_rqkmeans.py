"""rqkmeans: residual k-means codes, extra level, cold start, persistence, determinism."""

from __future__ import annotations

import filecmp
import math

import numpy as np
import pytest

import semid
from _learned_testkit import clustered as _clustered
from _learned_testkit import one_torch_thread  # noqa: F401  (autouse fixture)
from semid.errors import DataError, ParameterError


def clustered(n=300, dim=16, clusters=12, seed=0):
    return _clustered(n=n, dim=dim, clusters=clusters, seed=seed)
@pytest.fixture(scope="module")
def fitted():
    items, x = clustered()
    return semid.make("rqkmeans", n_levels=2, codebook_size=8, n_iter=10).fit(items, embeddings=x), items, x


def test_codes_are_unique_with_tiger_extra_level(fitted):
    tok, items, _ = fitted
    assert tok.codes.shape == (len(items), 3)
    assert (tok.codes >= 0).all()  # 'always': every item has the extra level
    assert tok.vocab.level_sizes[:2] == (8, 8)
    assert len({tuple(c) for c in tok.codes.tolist()}) == len(items)
    assert tok.collisions_resolved_ == round(tok.info_["collision_rate_before"] * len(items))
    assert tok.info_["utilization"] == [1.0, 1.0]


def test_semantic_levels_are_nearest_centroids(fitted):
    tok, _, x = fitted
    np.testing.assert_array_equal(tok.semantic_codes(x), tok.codes[:, :2])
    recon = tok.reconstruct(x)
    assert recon.shape == x.shape and np.mean((recon - x) ** 2) < np.var(x)


def test_colliding_only_policy_gives_prefix_free_variable_codes():
    items, x = clustered()
    tok = semid.make("rqkmeans", n_levels=2, codebook_size=8, disambiguation="colliding_only").fit(items, embeddings=x)
    lengths = (tok.codes >= 0).sum(1)
    assert set(lengths.tolist()) <= {2, 3}
    assert tok.trie.is_prefix_free


def test_encode_new_and_persistence(fitted, tmp_path):
    tok, items, x = fitted
    for i in range(0, len(items), 37):
        code = tok.encode_new(embedding=x[i])
        assert code[:2] == tok.encode(items.item_ids[i])[:2]
        assert tok.trie.is_prefix(code)
    loaded = semid.load(tok.save(tmp_path / "idx"))
    assert loaded.encode_new(embedding=x[5]) == tok.encode_new(embedding=x[5])
    unseen = x[:3].mean(0) + 50  # far from everything: still a well-formed code
    code = loaded.encode_new(embedding=unseen)
    assert len(code) == 3 and all(0 <= c < s for c, s in zip(code, loaded.vocab.level_sizes))


def test_encode_new_rejects_bad_embeddings(fitted):
    tok, _, x = fitted
    with pytest.raises(DataError, match="16 values"):
        tok.encode_new(embedding=x[0, :5])
    bad = x[0].copy()
    bad[2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        tok.encode_new(embedding=bad)
    with pytest.raises(DataError, match="embedding="):
        tok.encode_new({"title": "x"})


def test_balanced_caps_first_level_cluster_sizes():
    items, x = clustered(n=120)
    tok = semid.make("rqkmeans", n_levels=2, codebook_size=8, balanced=True, n_iter=10).fit(items, embeddings=x)
    counts = np.bincount(tok.codes[:, 0], minlength=8)
    assert counts.max() <= math.ceil(120 / 8)


def test_same_seed_gives_byte_identical_index(tmp_path):
    items, x = clustered()
    dirs = [semid.make("rqkmeans", n_levels=2, codebook_size=8, seed=3).fit(items, embeddings=x).save(tmp_path / f"r{i}")
            for i in range(2)]
    names = sorted(p.name for p in dirs[0].iterdir())
    assert "state.safetensors" in names
    assert all(filecmp.cmp(dirs[0] / n, dirs[1] / n, shallow=False) for n in names)


def test_bad_inputs():
    items, x = clustered(n=40)
    with pytest.raises(ParameterError, match="codebook_size 64 needs at least that many items, got 40"):
        semid.make("rqkmeans", codebook_size=64).fit(items, embeddings=x)
    with pytest.raises(DataError, match="needs item embeddings"):
        semid.make("rqkmeans", codebook_size=4).fit(items)
    with pytest.raises(DataError, match="has 39 rows but there are 40 items"):
        semid.make("rqkmeans", codebook_size=4).fit(items, embeddings=x[:39])
    for bad_value in (np.nan, np.inf):
        bad = x.copy()
        bad[7, 3] = bad_value
        with pytest.raises(DataError, match="row 7 holds NaN or infinite"):
            semid.make("rqkmeans", codebook_size=4).fit(items, embeddings=bad)
    with pytest.raises(ParameterError, match="disambiguation"):
        semid.make("rqkmeans", codebook_size=4, disambiguation="never").fit(items, embeddings=x)
