"""Top-k lists without excluded items, from a beam search that cannot skip them itself.

Leave-one-out evaluation may exclude every item a user has seen. A constrained beam
search returns its best ``width`` items; if excluded items take some of them, fewer
than ``k`` remain. Raising every user's beams to ``k`` plus the largest exclusion
set in the batch keeps ``k`` for everyone but costs hundreds of beams for the whole
batch when one heavy user is in it. :func:`ranked_without` decodes once with the
usual beams and again, with ``k + |excluded|`` beams, only the users whose list came
up short, so the common case costs nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["ranked_without"]


def ranked_without(
    rank: Callable[[list[int], int], list[list[str]]],
    banned: Sequence[set[str]],
    k: int,
    num_beams: int,
    n_items: int,
) -> list[list[str]]:
    """Per row, the best ``k`` items of ``rank`` that are not in ``banned[row]``.

    Args:
        rank: ``rank(rows, width)`` -> for each row index in ``rows``, its best
            ``width`` items best first (a beam search with ``max(num_beams,
            width)`` beams).
        banned: per row, the item ids to leave out (empty sets: nothing).
        k: list length wanted.
        num_beams: the decoder's usual beams (the first pass returns them all).
        n_items: catalogue size (widths never exceed it).
    """
    rows = list(range(len(banned)))
    excluding = any(banned)
    width = min(max(k, num_beams) if excluding else k, n_items)
    lists = rank(rows, width)
    kept = [[item for item in ranked if item not in banned[b]][:k] for b, ranked in enumerate(lists)]
    short = [b for b in rows if len(kept[b]) < k and len(lists[b]) > len(kept[b])]
    if short:
        wide = min(k + max(len(banned[b]) for b in short), n_items)
        for b, ranked in zip(short, rank(short, wide)):
            kept[b] = [item for item in ranked if item not in banned[b]][:k]
    return kept
