"""Reference recommenders that need no training: the bar any model must clear."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from semid.data.dataset import Dataset

from .split import leave_one_out

__all__ = ["MostPopular", "RandomItems"]


class MostPopular:
    """The most frequent items of the training split, the same list for every user.

    Counts come from the leave-one-out training sequences only (validation and
    test items excluded), so the baseline sees exactly what the models see;
    ``train_sequences`` replaces them for another split (a random hold-out's
    ``train``).
    Ties (including the items never seen in training, which come last) are
    broken by the dataset's item order, so the ranking is deterministic and
    covers the whole catalogue.
    """

    def __init__(self, dataset: Dataset, train_sequences: Sequence[Sequence[str]] | None = None):
        if train_sequences is None:
            train_sequences = leave_one_out(dataset).train_sequences
        counts = Counter(item for seq in train_sequences for item in seq)
        order = {item: i for i, item in enumerate(dataset.items.item_ids)}
        self.ranked: list[str] = sorted(order, key=lambda item: (-counts[item], order[item]))

    def recommend(
        self,
        histories: Sequence[Sequence[str]],
        k: int,
        *,
        exclude: Sequence[set[str]] | None = None,
        users: Sequence[str] | None = None,
    ) -> list[list[str | None]]:
        lists: list[list[str | None]] = []
        for row in range(len(histories)):
            skip = exclude[row] if exclude is not None else set()
            lists.append([item for item in self.ranked[: k + len(skip)] if item not in skip][:k])
        return lists


class RandomItems:
    """A seeded random ranking of the catalogue for every user: the floor of any comparison.

    Each call draws a fresh permutation per user from one generator seeded at
    construction, so the same recommender called on the same users in the same
    order gives the same lists.
    """

    def __init__(self, dataset: Dataset, seed: int = 0):
        import numpy as np

        self.items = list(dataset.items.item_ids)
        self._rng = np.random.default_rng(seed)

    def recommend(
        self,
        histories: Sequence[Sequence[str]],
        k: int,
        *,
        exclude: Sequence[set[str]] | None = None,
        users: Sequence[str] | None = None,
    ) -> list[list[str | None]]:
        lists: list[list[str | None]] = []
        for row in range(len(histories)):
            skip = exclude[row] if exclude is not None else set()
            order = self._rng.permutation(len(self.items))
            lists.append([self.items[i] for i in order[: k + len(skip)] if self.items[i] not in skip][:k])
        return lists
