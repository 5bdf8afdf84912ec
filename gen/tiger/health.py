"""Cheap signs that a generator has collapsed onto one list for everybody.

A sequence-to-sequence recommender whose decoder ignores the encoder still
lowers its training loss (it learns the code grammar and item popularity) while
recommending nearly the same items to every user. The count of distinct items
across users' top-k lists shows it at once: healthy TIGER runs on Beauty hold
hundreds of distinct items in 2,000 users' top-10 lists after 0.5M targets,
collapsed ones 15-25.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")

__all__ = ["collapse_floor", "distinct_items", "sample_cases"]


def distinct_items(ranked: Sequence[Sequence[str | None]], k: int = 10) -> int:
    """Number of distinct (valid) items in the top-``k`` of all lists."""
    return len({item for row in ranked for item in list(row)[:k] if item is not None})


def collapse_floor(n_users: int, n_items: int, k: int = 10) -> int:
    """Distinct-item count below which lists are called collapsed.

    0.5% of the most the lists could hold (``min(k * n_users, n_items)``), at
    least ``k``. On Beauty with 2,000 users that is 60: well above the 15-25 of a
    decoder that ignores its input, well below the 181 of a healthy model after
    its first 0.26M targets (and the 500+ it holds later).
    """
    return max(k, int(0.005 * min(k * n_users, n_items)))


def sample_cases(cases: Sequence[T], n: int, seed: int) -> list[T]:
    """The seeded sample of ``n`` cases (kept in their order) that validation and diagnostics use; all when ``n`` is 0 or too large."""
    if not n or n >= len(cases):
        return list(cases)
    chosen = np.sort(np.random.default_rng(seed).choice(len(cases), size=n, replace=False))
    return [cases[i] for i in chosen]
