"""IID: one new token per item ("How to Index Item IDs", independent indexing)."""

from __future__ import annotations

import numpy as np

from ..params import Param
from ..registry import register
from ..tokenizer import FitInputs, FitResult, ItemTokenizer
from ..vocab import CodeVocab

__all__ = ["IndependentTokenizer"]


@register
class IndependentTokenizer(ItemTokenizer):
    """Each item gets its own single token, in a seeded random order.

    Codes are ``(k,)`` with ``k`` a permutation of ``0..n_items-1``: unique by
    construction (no collisions), no shared structure between items. Token
    numbers are shuffled with ``seed`` so they carry no dataset-order leak.
    """

    scheme = "independent"
    collision_policy = "none needed: every item has its own token"
    description = "IID: one independent token per item"
    params = {
        "seed": Param("seed", 0, "random seed for the token order"),
        "shuffle": Param("shuffle", True, "shuffle token numbers (False: dataset order)"),
    }

    def _fit(self, inputs: FitInputs) -> FitResult:
        n = len(inputs.items)
        numbers = np.arange(n)
        if self._params["shuffle"]:
            numbers = np.random.default_rng(self.seed).permutation(n)
        return FitResult(codes=numbers[:, None].astype(np.int32), vocab=CodeVocab([n], ["i"]))
