"""RID: random integer ids rendered as digit sub-tokens ("How to Index Item IDs")."""

from __future__ import annotations

import numpy as np

from ..params import Param, at_least
from ..registry import register
from ..tokenizer import FitInputs, FitResult, ItemTokenizer
from ._numbers import digits_codes

__all__ = ["RandomTokenizer"]


@register
class RandomTokenizer(ItemTokenizer):
    """Each item gets a distinct random number in ``[0, n_items)`` written in base ``base``.

    Like the paper's RID (numbers ``1001 + i`` over a shuffled item list, split
    by the LM tokenizer into sub-tokens), unrelated items share leading digits.
    Codes are distinct numbers, so no collision can occur.
    """

    scheme = "random"
    collision_policy = "none needed: numbers are a permutation"
    description = "RID: random numbers split into base-b digit tokens"
    params = {
        "seed": Param("seed", 0, "random seed of the permutation"),
        "base": Param("base", 10, "digits base (tokens per level)", check=at_least(2)),
    }

    def _fit(self, inputs: FitInputs) -> FitResult:
        numbers = np.random.default_rng(self.seed).permutation(len(inputs.items))
        codes, vocab = digits_codes(numbers, self._params["base"])
        return FitResult(codes=codes, vocab=vocab)
