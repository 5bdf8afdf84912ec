"""Full-ranking accuracy metrics with one held-out target per user.

Every evaluated user counts in the denominator. A list shorter than K scores
what it has; an entry that is ``None`` (an invalid generation) is a miss and
takes its rank, so invalid output can never raise a score.

Recall@K equals HR@K here (one target). NDCG@K = 1 / log2(rank + 1) for a hit at
1-based ``rank <= K``, else 0 (the ideal DCG is 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from semid.errors import ParameterError

__all__ = ["DEFAULT_KS", "hit_ranks", "metrics_by_target_count", "ranking_metrics"]

DEFAULT_KS = (1, 5, 10, 20)


def hit_ranks(ranked: Sequence[Sequence[str | None]], targets: Sequence[str]) -> np.ndarray:
    """1-based rank of each target in its list, 0 when absent: ``int64 (n_users,)``."""
    if len(ranked) != len(targets):
        raise ParameterError(f"{len(ranked)} ranked lists for {len(targets)} targets; expected one list per target")
    ranks = np.zeros(len(targets), dtype=np.int64)
    for u, (items, target) in enumerate(zip(ranked, targets)):
        for position, item in enumerate(items):
            if item is not None and item == target:
                ranks[u] = position + 1
                break
    return ranks


def ranking_metrics(
    ranked: Sequence[Sequence[str | None]], targets: Sequence[str], ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """``{"recall@K": ..., "ndcg@K": ...}`` averaged over all users.

    Args:
        ranked: per user, recommended item ids best first (``None`` = invalid).
        targets: per user, the held-out item id.
        ks: cut-offs.
    """
    ranks = hit_ranks(ranked, targets)
    n = max(len(targets), 1)
    out: dict[str, float] = {}
    for k in sorted(set(int(k) for k in ks)):
        hit, gains = _hits_and_gains(ranks, k)
        out[f"recall@{k}"] = float(hit.sum() / n)
        out[f"ndcg@{k}"] = float(gains.sum() / n)
    return out


def _hits_and_gains(ranks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per user, hit within the top ``k`` (``bool``) and its NDCG gain (``float64``), from 1-based ranks."""
    if k < 1:
        raise ParameterError(f"cut-off K must be >= 1, got {k}")
    hit = (ranks >= 1) & (ranks <= k)
    return hit, np.where(hit, 1.0 / np.log2(np.maximum(ranks, 1) + 1.0), 0.0)


def ndcg_at(rank: int, k: int) -> float:
    """NDCG@k of a single 1-based rank (0 = miss)."""
    return 1.0 / math.log2(rank + 1) if 1 <= rank <= k else 0.0


def metrics_by_target_count(
    ranked: Sequence[Sequence[str | None]],
    targets: Sequence[str],
    train_counts: dict[str, int],
    *,
    edges: Sequence[int] = (1, 5, 20),
    k: int = 10,
) -> list[dict[str, float | int | str]]:
    """Recall@K and NDCG@K of the users grouped by how often their target occurs in training.

    Splits the users at ``edges`` (counts ``0``, ``1-4``, ``5-19``, ``>=20`` by default), so a
    gap between two splits, or two models, can be traced to cold or popular targets. Each row:
    ``{"targets": "1-4", "users": int, "share": float, "recall@K": float, "ndcg@K": float}``;
    empty groups are kept (with zeros) so tables line up.

    Args:
        ranked: per user, recommended item ids best first (``None`` = invalid).
        targets: per user, the held-out item id.
        train_counts: training interactions per item id (absent = 0).
        edges: increasing positive counts where a new group starts.
        k: cut-off.
    """
    bounds = [int(e) for e in edges]
    if not bounds or bounds[0] < 1 or any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise ParameterError(f"edges must be increasing positive counts, got {list(edges)}")
    hits, gains = _hits_and_gains(hit_ranks(ranked, targets), k)
    counts = np.array([int(train_counts.get(t, 0)) for t in targets], dtype=np.int64)
    group = np.searchsorted(np.array(bounds), counts, side="right")
    lows, highs = [0, *bounds], [*bounds, None]
    rows: list[dict[str, float | int | str]] = []
    for g, (low, high) in enumerate(zip(lows, highs)):
        mask = group == g
        n = int(mask.sum())
        label = f">={low}" if high is None else (str(low) if high == low + 1 else f"{low}-{high - 1}")
        rows.append({"targets": label, "users": n, "share": n / max(len(targets), 1),
                     f"recall@{k}": float(hits[mask].sum() / n) if n else 0.0,
                     f"ndcg@{k}": float(gains[mask].sum() / n) if n else 0.0})
    return rows
