"""Making codes unique: the disambiguation policies schemes share.

TIGER's policy appends one level that numbers the items sharing a code
(0, 1, 2, ... in item order). With ``always=True`` every item gets that level
(fixed length, as in TIGER); otherwise only colliding items do (shorter codes,
still prefix-free because no unique code is a prefix of a colliding one).
"""

from __future__ import annotations

import numpy as np

__all__ = ["append_disambiguation", "count_collisions"]


def count_collisions(codes: np.ndarray) -> int:
    """Number of items whose code equals an earlier item's code."""
    codes = np.asarray(codes)
    if codes.size == 0:
        return 0
    return int(codes.shape[0] - np.unique(codes, axis=0).shape[0])


def append_disambiguation(codes: np.ndarray, *, always: bool = True) -> tuple[np.ndarray, int, int]:
    """Append a level that numbers items sharing a (fixed-length) code.

    Args:
        codes: ``int (n_items, L)`` codes without padding.
        always: give every item the extra level (TIGER) or only colliding ones.

    Returns:
        ``(codes int32 (n_items, L + 1) -1 padded, collisions_resolved, extra_level_size)``
        where ``extra_level_size`` is the largest group size (at least 1).
    """
    codes = np.asarray(codes, dtype=np.int64)
    n = codes.shape[0]
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    # Rank of each item within its group, in item order (stable sort keeps it).
    order = np.argsort(inverse, kind="stable")
    group_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - group_start[inverse[order]]
    extra = rank.copy()
    if not always:
        extra[counts[inverse] == 1] = -1
    out = np.concatenate([codes, extra[:, None]], axis=1).astype(np.int32)
    return out, int(n - counts.size), int(counts.max())
