"""Tokenizers follow scikit-learn's estimator conventions: explicit signatures, get/set_params, clone."""

from __future__ import annotations

import inspect

import pytest

import semid
from semid.errors import NotFittedError, ParameterError


@pytest.mark.parametrize("scheme", semid.available_schemes())
def test_signature_params_and_clone(scheme):
    sklearn_base = pytest.importorskip("sklearn.base")
    tok = semid.make(scheme)
    names = list(inspect.signature(type(tok)).parameters)
    assert names == list(type(tok).params) and "seed" in names
    copy = sklearn_base.clone(tok)
    assert copy.get_params(deep=True) == tok.get_params() and copy is not tok
    assert tok.set_params(seed=7) is tok and tok.get_params()["seed"] == 7
    with pytest.raises(ParameterError, match="unknown parameter 'bogus'"):
        tok.set_params(bogus=1)


def test_fitted_state_has_one_public_name_each():
    data = semid.load_dataset("builtin:all_beauty_2023")
    tok = semid.make("random")
    with pytest.raises(NotFittedError):
        tok.codes  # noqa: B018
    tok.fit(data.items)
    for name in ("item_ids", "codes", "vocab", "trie"):
        assert getattr(tok, name) is not None and not hasattr(tok, f"{name}_")
