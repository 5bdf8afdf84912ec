"""Beyond-accuracy metrics of recommended lists: coverage, popularity bias, diversity.

All metrics read the top-K of each list (``None`` entries, invalid outputs,
are skipped). Coverage and ``distinct_categories`` count every evaluated user
(an empty list adds nothing); the popularity metrics average over lists with
at least one valid item and ``intra_list_diversity`` over lists with at least
two categorised items, so empty lists do not pull them toward 0.

- ``coverage@K``: distinct items recommended in any top-K list / catalogue size.
- ``popularity_percentile@K``: mean popularity percentile of recommended items,
  where an item's percentile is the fraction of catalogue items with a strictly
  smaller training count (0 = least popular, near 1 = most popular). Compare it
  with ``training_popularity_percentile``, the same mean over the training
  interactions themselves: a recommender that matches the training
  distribution scores about the same, a popularity-biased one higher.
- ``arp@K`` (average recommendation popularity, Abdollahpouri et al.): mean
  training count of the recommended items, per list, averaged over users.
- ``distinct_categories@K``: distinct leaf categories in a list (the last entry
  of an item's ``categories`` path; items without categories are ignored).
- ``intra_list_diversity@K``: share of item pairs in a list whose leaf
  categories differ (0 = one category, 1 = all different).

Category metrics are left out when no item has categories.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from semid.data.dataset import ItemTable

__all__ = ["beyond_accuracy_metrics", "item_popularity", "popularity_percentiles"]


def item_popularity(items: ItemTable, sequences: Sequence[Sequence[str]]) -> np.ndarray:
    """Training interaction count of every item: ``int64 (n_items,)`` in item-table order."""
    counts = np.zeros(len(items), dtype=np.int64)
    for item, count in Counter(item for seq in sequences for item in seq).items():
        if item in items:
            counts[items.position(item)] = count
    return counts


def popularity_percentiles(counts: np.ndarray) -> np.ndarray:
    """Fraction of items with a strictly smaller count: ``float64 (n_items,)`` in ``[0, 1)``."""
    counts = np.asarray(counts)
    if counts.size == 0:
        return np.zeros(0)
    return np.searchsorted(np.sort(counts), counts, side="left") / counts.size


def _leaf_categories(items: ItemTable) -> list[str | None]:
    out: list[str | None] = []
    for value in items.field("categories"):
        if isinstance(value, (list, tuple)):
            names = [str(v) for v in value if isinstance(v, str) and v.strip()]
            out.append(names[-1] if names else None)
        elif isinstance(value, str) and value.strip():
            out.append(value)
        else:
            out.append(None)
    return out


def beyond_accuracy_metrics(
    ranked: Sequence[Sequence[str | None]],
    items: ItemTable,
    train_sequences: Sequence[Sequence[str]],
    ks: Sequence[int],
) -> dict[str, Any]:
    """Coverage, popularity and category metrics of ``ranked`` lists at each K.

    Args:
        ranked: per user, item ids best first (``None`` = invalid, skipped).
        items: the catalogue (popularity and categories are looked up here).
        train_sequences: training interactions only (popularity reference).
        ks: cut-offs.

    Returns:
        Flat ``{"coverage@K": float, ...}`` plus ``training_popularity_percentile``.
    """
    counts = item_popularity(items, train_sequences)
    percentile = popularity_percentiles(counts)
    leaves = _leaf_categories(items)
    has_categories = any(leaf is not None for leaf in leaves)
    positions = [[items.index[i] for i in row if i is not None and i in items.index] for row in ranked]
    n_users = max(len(ranked), 1)
    out: dict[str, Any] = {}
    total = counts.sum()
    out["training_popularity_percentile"] = float((percentile * counts).sum() / total) if total else 0.0
    for k in sorted(set(int(k) for k in ks)):
        tops = [row[:k] for row in positions]
        seen = {p for row in tops for p in row}
        out[f"coverage@{k}"] = len(seen) / max(len(items), 1)
        nonempty = [row for row in tops if row]
        n_nonempty = max(len(nonempty), 1)
        out[f"popularity_percentile@{k}"] = float(sum(percentile[row].mean() for row in nonempty) / n_nonempty)
        out[f"arp@{k}"] = float(sum(counts[row].mean() for row in nonempty) / n_nonempty)
        if has_categories:
            distinct, diversity, n_pairs_lists = 0.0, 0.0, 0
            for row in tops:
                cats = [leaves[p] for p in row if leaves[p] is not None]
                distinct += len(set(cats))
                if len(cats) >= 2:
                    same = sum(c * (c - 1) for c in Counter(cats).values())
                    diversity += 1.0 - same / (len(cats) * (len(cats) - 1))
                    n_pairs_lists += 1
            out[f"distinct_categories@{k}"] = distinct / n_users
            out[f"intra_list_diversity@{k}"] = diversity / max(n_pairs_lists, 1)
    return out
