"""Shared by RID and SID: integers rendered as fixed-width digit sequences.

Writing item number ``k`` in base ``b`` with ``D`` digits gives a code of ``D``
levels; items with nearby numbers share leading digits, which is the point of
sequential indexing and the source of spurious sharing in random indexing.
"""

from __future__ import annotations

import numpy as np

from ..vocab import CodeVocab

__all__ = ["digits_codes"]


def digits_codes(numbers: np.ndarray, base: int) -> tuple[np.ndarray, CodeVocab]:
    """``int (n,)`` distinct non-negative numbers -> ``(int32 (n, D) digits, vocab)``.

    ``D`` is the fewest digits that hold ``numbers.max()``; the first level's size
    is trimmed to the largest leading digit used.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    top = int(numbers.max(initial=0))
    n_digits = 1
    while base**n_digits <= top:
        n_digits += 1
    codes = np.empty((numbers.size, n_digits), dtype=np.int32)
    rest = numbers.copy()
    for position in range(n_digits - 1, -1, -1):
        codes[:, position] = rest % base
        rest //= base
    sizes = [base] * n_digits
    sizes[0] = int(codes[:, 0].max(initial=0)) + 1
    return codes, CodeVocab(sizes)
