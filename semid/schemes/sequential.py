"""SID: consecutive numbers by first appearance in training sequences ("How to Index Item IDs").

Users are walked in one of the paper's orders (``original`` dataset order,
``short2long`` or ``long2short`` by sequence length; ``random`` is a seeded
shuffle added for ablations); each item gets the next number the first time
it appears. Items absent from the training sequences (validation/test-only or
never interacted) are numbered afterwards in dataset order, so no held-out
interaction influences the numbering. Numbers are written in base ``base`` so
items that appear close together share leading digit tokens.
"""

from __future__ import annotations

import numpy as np

from ..params import Param, at_least
from ..registry import register
from ..tokenizer import FitInputs, FitResult, ItemTokenizer
from ._numbers import digits_codes

__all__ = ["SequentialTokenizer"]


@register
class SequentialTokenizer(ItemTokenizer):
    """Sequential indexing; codes are the digits of each item's number."""

    scheme = "sequential"
    requires = frozenset({"sequences"})
    collision_policy = "none needed: numbers are distinct"
    description = "SID: numbers by order of first appearance in training sequences"
    params = {
        "seed": Param("seed", 0, "seed for order=random"),
        "base": Param("base", 10, "digits base (tokens per level)", check=at_least(2)),
        "order": Param(
            "order", "original", "user order", choices=("original", "short2long", "long2short", "random")
        ),
    }

    def _fit(self, inputs: FitInputs) -> FitResult:
        sequences = inputs.sequences or []
        users = np.arange(len(sequences))
        order = self._params["order"]
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        if order == "short2long":
            users = np.argsort(lengths, kind="stable")
        elif order == "long2short":
            users = np.argsort(-lengths, kind="stable")
        elif order == "random":
            users = np.random.default_rng(self.seed).permutation(len(sequences))
        numbers = np.full(len(inputs.items), -1, dtype=np.int64)
        position = inputs.items.index
        counter = 0
        for u in users:
            for item in sequences[u]:
                row = position[item]
                if numbers[row] < 0:
                    numbers[row] = counter
                    counter += 1
        unseen = np.nonzero(numbers < 0)[0]
        numbers[unseen] = counter + np.arange(unseen.size)
        codes, vocab = digits_codes(numbers, self._params["base"])
        return FitResult(
            codes=codes, vocab=vocab, info={"items_numbered_from_training": int(counter), "items_unseen": int(unseen.size)}
        )
