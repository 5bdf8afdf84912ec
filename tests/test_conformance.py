"""Every registered scheme (and the named hybrids) passes semid.testing.check_tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

import semid
from semid.evaluation import leave_one_out
from semid.registry import scheme_class
from semid.testing import check_tokenizer

#: Small settings so each scheme fits in well under a second on ~1k items.
FAST_PARAMS = {
    "collaborative": {"n_clusters": 4, "max_group_size": 40},
    "collaborative+independent": {"prefix": {"n_clusters": 4, "max_group_size": 40}},
    "category+collaborative": {"suffix": {"n_clusters": 4, "max_group_size": 40}},
    "title": {"on_missing": "item_id"},
    "title+independent": {"prefix": {"on_missing": "item_id"}},
}


def _schemes() -> list[str]:
    names = [n for n in semid.available_schemes() if n != "imported"]
    return names + ["category+random", "title+independent"]


def _params(name: str) -> dict:
    cls = scheme_class(name)
    if hasattr(cls, "conformance_params"):
        return cls.conformance_params()
    return FAST_PARAMS.get(name, {})


def _needs(name: str, what: str) -> bool:
    return what in scheme_class(name).requires


def _check(scheme, dataset, workdir):
    split = leave_one_out(dataset)
    rng = np.random.default_rng(0)
    n = len(dataset.items)
    embeddings = rng.normal(size=(n, 32)).astype(np.float32) if _needs(scheme, "embeddings") else None
    cf = rng.normal(size=(n, 16)).astype(np.float32) if _needs(scheme, "cf_embeddings") else None
    check_tokenizer(
        scheme, dataset.items, split.train_sequences, workdir=workdir,
        params=_params(scheme), embeddings=embeddings, cf_embeddings=cf,
    )


@pytest.mark.parametrize("scheme", _schemes())
def test_scheme_conforms(scheme, beauty_small, tmp_path):
    """Real Beauty 2014 items (category paths, ASINs), from ../shared/data."""
    _check(scheme, beauty_small, tmp_path)


@pytest.mark.parametrize("scheme", [s for s in _schemes() if not s.startswith("category")])
def test_scheme_conforms_on_the_embedded_dataset(scheme, all_beauty, tmp_path):
    """The same checks on the dataset shipped in the package, so they run on every machine.

    Its items have no category paths, so the category schemes run only on Beauty above.
    """
    _check(scheme, all_beauty, tmp_path)


def test_imported_conforms(beauty_small, tmp_path):
    from semid.interop import export_lcrec

    source = semid.make("random").fit(beauty_small.items)
    path = export_lcrec(source, tmp_path / "index.json")
    tok = check_tokenizer("imported", beauty_small.items, None, workdir=tmp_path, params={"path": str(path)})
    assert tok.encode_batch(beauty_small.items.item_ids) == source.encode_batch(beauty_small.items.item_ids)
