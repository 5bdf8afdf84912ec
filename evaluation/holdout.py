"""The random hold-out protocol of the graph-CF papers (LightGCN, RLMRec, AlphaRec).

Leave-one-out (:mod:`semid.evaluation.split`) asks for the *next* item; the
collaborative-filtering papers semid reproduces ask a different question: given
a random part of each user's interactions, which of the *other* items did the
user interact with? Their numbers (Recall@20, NDCG@20) are only comparable
under their protocol, so semid offers it beside leave-one-out:

- split: per user, the unique items are shuffled with a generator seeded by
  ``(seed, user position)`` and cut by ``ratios`` (default 8:1:1) into train,
  valid and test. Every user with at least 3 items gets at least one item in
  each part (``round`` of the share, floored at 1); users with fewer items keep
  them all in train and are counted in :attr:`Holdout.skipped`. Train items keep
  their time order, so a sequential model can train on them too.
- ranking: every catalogue item is a candidate except the user's items outside
  the evaluated part (the papers mask the training items; semid also masks the
  validation items when testing, which are known positives that would otherwise
  take slots); the history given to the model is those items in time order.
- metrics, averaged over users with a non-empty target set (as in the
  references): ``recall@K = |top-K ∩ T| / |T|``, ``ndcg@K = DCG@K / IDCG@K``
  with ``IDCG@K = sum_{i < min(K, |T|)} 1 / log2(i + 2)``, and ``hit@K`` (at
  least one target in the top K).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from semid.data.dataset import Dataset
from semid.errors import ParameterError

from .split import sample_cases

__all__ = ["Holdout", "evaluate_holdout", "holdout_metrics", "random_holdout"]

logger = logging.getLogger(__name__)

DEFAULT_RATIOS = (0.8, 0.1, 0.1)


@dataclass
class Holdout:
    """Result of :func:`random_holdout`; lists are aligned with ``user_ids``.

    Attributes:
        user_ids: every user of the dataset, in dataset order.
        train: per user, training items in time order.
        valid: per user, validation items (a set's worth, in time order).
        test: per user, test items (in time order).
        ratios: the (train, valid, test) shares asked for.
        seed: the split's seed.
        known_at_test: per user, train and valid items in time order (the test-time history).
        skipped: users kept whole in train because they have fewer than 3 items.
    """

    user_ids: list[str]
    train: list[list[str]]
    valid: list[list[str]]
    test: list[list[str]]
    ratios: tuple[float, float, float]
    seed: int
    known_at_test: list[list[str]]
    skipped: int = 0

    def targets(self, split: str) -> list[list[str]]:
        if split not in ("valid", "test"):
            raise ParameterError(f"split must be 'valid' or 'test', got {split!r}")
        return self.valid if split == "valid" else self.test

    def settings(self) -> dict:
        return {"protocol": "random hold-out", "ratios": list(self.ratios), "split_seed": self.seed,
                "users_kept_in_train": self.skipped}


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """``ratios`` as three floats; ParameterError unless they are positive shares summing to 1."""
    values = tuple(float(r) for r in ratios)
    if len(values) != 3 or any(not r > 0 for r in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ParameterError(f"ratios must be three positive shares (train, valid, test) summing to 1, got {ratios!r}")
    return values  # type: ignore[return-value]


def random_holdout(dataset: Dataset, *, ratios: Sequence[float] = DEFAULT_RATIOS, seed: int = 0) -> Holdout:
    """Split every user's unique items at random into train / valid / test (see the module docstring)."""
    shares = check_ratios(ratios)
    train, valid, test, known = [], [], [], []
    skipped = 0
    for position, seq in enumerate(dataset.sequences.items):
        order = list(dict.fromkeys(seq))  # unique items, first occurrence order
        n = len(order)
        if n < 3:
            train.append(order)
            valid.append([])
            test.append([])
            known.append(order)
            skipped += 1
            continue
        n_test = max(1, int(round(n * shares[2])))
        n_valid = max(1, int(round(n * shares[1])))
        n_test = min(n_test, n - 2)
        n_valid = min(n_valid, n - 1 - n_test)
        permutation = np.random.default_rng([seed, position]).permutation(n)
        test_rows = set(permutation[:n_test].tolist())
        valid_rows = set(permutation[n_test:n_test + n_valid].tolist())
        train.append([item for row, item in enumerate(order) if row not in test_rows and row not in valid_rows])
        valid.append([item for row, item in enumerate(order) if row in valid_rows])
        test.append([item for row, item in enumerate(order) if row in test_rows])
        known.append([item for row, item in enumerate(order) if row not in test_rows])
    if skipped:
        logger.warning("random hold-out: %d users have fewer than 3 items and stay whole in train", skipped)
    return Holdout(list(dataset.sequences.user_ids), train, valid, test, shares, seed, known, skipped)


def holdout_metrics(ranked: Sequence[Sequence[str | None]], targets: Sequence[Sequence[str]],
                    ks: Sequence[int]) -> dict[str, float]:
    """``recall@K``, ``ndcg@K`` and ``hit@K`` averaged over users (every target set non-empty).

    Args:
        ranked: per user, item ids best first (``None`` = an invalid slot, a miss).
        targets: per user, the held-out items.
    """
    if len(ranked) != len(targets):
        raise ParameterError(f"{len(ranked)} ranked lists for {len(targets)} target sets")
    cutoffs = sorted(set(int(k) for k in ks))
    if not cutoffs or cutoffs[0] < 1:
        raise ParameterError(f"cut-offs must be >= 1, got {list(ks)}")
    k_max = cutoffs[-1]
    discounts = 1.0 / np.log2(np.arange(k_max) + 2.0)
    totals = {f"{name}@{k}": 0.0 for k in cutoffs for name in ("recall", "ndcg", "hit")}
    for items, wanted in zip(ranked, targets):
        wanted = set(wanted)
        if not wanted:
            raise ParameterError("a user with no held-out items cannot be scored; leave such users out")
        hits = np.zeros(k_max)
        for position, item in enumerate(list(items)[:k_max]):
            hits[position] = item is not None and item in wanted
        for k in cutoffs:
            found = hits[:k].sum()
            ideal = discounts[: min(k, len(wanted))].sum()
            totals[f"recall@{k}"] += float(found) / len(wanted)
            totals[f"ndcg@{k}"] += float((hits[:k] * discounts[:k]).sum() / ideal)
            totals[f"hit@{k}"] += float(found > 0)
    n = max(len(ranked), 1)
    return {name: value / n for name, value in sorted(totals.items())}


def evaluate_holdout(
    recommender,
    holdout: Holdout,
    *,
    split: str = "test",
    ks: Sequence[int] = (5, 10, 20),
    n_users: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = True,
) -> dict[str, Any]:
    """Full-ranking evaluation of ``recommender`` under the random hold-out protocol.

    Args:
        recommender: any :class:`semid.evaluation.Recommender` (``recommend(histories,
            k, exclude=, users=)``).
        holdout: the split (:func:`random_holdout`); models must have been trained on its train part.
        split: ``"valid"`` or ``"test"``.
        n_users: a seeded sample of this many evaluated users (:func:`sample_cases`); None = all.

    Returns:
        ``{"metrics": {...}, "n_users": int, "seconds": float, "settings": {...}}``.
    """
    targets = holdout.targets(split)
    rows = [u for u, t in enumerate(targets) if t]
    if n_users is not None:
        rows = sample_cases(rows, n_users, seed)
    k_max = max(int(k) for k in ks)
    started = time.perf_counter()
    ranked: list[list[str | None]] = []
    for start in tqdm(range(0, len(rows), batch_size), desc=f"evaluate {split}", unit="batch", disable=not progress):
        batch = rows[start:start + batch_size]
        histories, exclude = [], []
        for u in batch:
            known = holdout.train[u] if split == "valid" else holdout.known_at_test[u]
            histories.append(known)
            exclude.append(set(known))
        lists = recommender.recommend(histories, k_max, exclude=exclude, users=[holdout.user_ids[u] for u in batch])
        if len(lists) != len(batch):
            raise ValueError(f"recommender returned {len(lists)} lists for {len(batch)} histories")
        ranked.extend(list(items)[:k_max] for items in lists)
    metrics = holdout_metrics(ranked, [targets[u] for u in rows], ks)
    return {
        "metrics": metrics,
        "n_users": len(rows),
        "seconds": round(time.perf_counter() - started, 3),
        "settings": {**holdout.settings(), "split": split, "ks": sorted(set(int(k) for k in ks)),
                     "user_sample": None if n_users is None else {"n_users": n_users, "seed": seed},
                     "masked": "the user's items outside the evaluated part", "full_ranking": True},
    }
