"""Beyond-accuracy metrics on hand-made lists, and their place in evaluate()'s JSON."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semid.data.dataset import Dataset, ItemTable, Sequences
from semid.evaluation import evaluate
from semid.evaluation.beyond import beyond_accuracy_metrics, item_popularity, popularity_percentiles


def _items(with_categories: bool = True) -> ItemTable:
    cats = {"a": ["Beauty", "Lips"], "b": ["Beauty", "Lips"], "c": ["Beauty", "Eyes"], "d": ["Beauty", "Hair"], "e": None}
    return ItemTable(
        [{"item_id": i, **({"categories": c} if with_categories and c else {})} for i, c in cats.items()]
    )


# training counts: a=4, b=2, c=1, d=1, e=0
TRAIN = [["a", "a", "b"], ["a", "b", "c"], ["a", "d"]]


def test_popularity_counts_and_percentiles():
    items = _items()
    counts = item_popularity(items, TRAIN)
    assert counts.tolist() == [4, 2, 1, 1, 0]
    # fraction of items with a strictly smaller count
    assert popularity_percentiles(counts).tolist() == [0.8, 0.6, 0.2, 0.2, 0.0]


def test_coverage_counts_distinct_items_over_catalogue():
    out = beyond_accuracy_metrics([["a", "b"], ["a", "c"]], _items(), TRAIN, ks=[1, 2])
    assert out["coverage@1"] == pytest.approx(1 / 5)  # only "a" at rank 1
    assert out["coverage@2"] == pytest.approx(3 / 5)


def test_popularity_bias_of_lists():
    out = beyond_accuracy_metrics([["a", "b"], ["c", None]], _items(), TRAIN, ks=[2])
    # list 1: percentiles 0.8, 0.6 -> 0.7; list 2: c only (None skipped) -> 0.2
    assert out["popularity_percentile@2"] == pytest.approx((0.7 + 0.2) / 2)
    assert out["arp@2"] == pytest.approx((3.0 + 1.0) / 2)
    # training interactions: 4 x 0.8 + 2 x 0.6 + 1 x 0.2 + 1 x 0.2 over 8
    assert out["training_popularity_percentile"] == pytest.approx((3.2 + 1.2 + 0.4) / 8)


def test_popularity_ignores_empty_lists_but_coverage_counts_users():
    out = beyond_accuracy_metrics([["d"], []], _items(), TRAIN, ks=[1])
    assert out["popularity_percentile@1"] == pytest.approx(0.2)
    assert out["coverage@1"] == pytest.approx(1 / 5)


def test_category_diversity():
    # list 1: Lips, Lips, Eyes -> 2 distinct; pairs differing: 2 of 3
    # list 2: Hair + uncategorised "e" -> 1 distinct, fewer than 2 categorised items
    out = beyond_accuracy_metrics([["a", "b", "c"], ["d", "e"]], _items(), TRAIN, ks=[3])
    assert out["distinct_categories@3"] == pytest.approx((2 + 1) / 2)
    assert out["intra_list_diversity@3"] == pytest.approx(2 / 3)


def test_single_category_list_has_zero_diversity():
    out = beyond_accuracy_metrics([["a", "b"]], _items(), TRAIN, ks=[2])
    assert out["intra_list_diversity@2"] == 0.0
    assert out["distinct_categories@2"] == 1.0


def test_category_metrics_absent_without_categories():
    out = beyond_accuracy_metrics([["a", "b"]], _items(with_categories=False), TRAIN, ks=[2])
    assert "distinct_categories@2" not in out and "coverage@2" in out


class _Fixed:
    """Recommends the same list to everyone."""

    def __init__(self, ranked):
        self.ranked = ranked

    def recommend(self, histories, k, *, exclude=None, users=None):
        out = []
        for b in range(len(histories)):
            banned = exclude[b] if exclude is not None else set()
            out.append([i for i in self.ranked if i not in banned][:k])
        return out


def _dataset() -> Dataset:
    seqs = [["a", "b", "c", "d"], ["b", "c", "a", "e"], ["c", "a", "b", "a"]]
    return Dataset("toy", _items(), Sequences(["u1", "u2", "u3"], seqs))


def test_evaluate_returns_beyond_accuracy_metrics_in_the_same_json():
    result = evaluate(_Fixed(["a", "b", "c"]), _dataset(), ks=(1, 2), progress=False)
    metrics = result["metrics"]
    assert metrics["coverage@2"] == pytest.approx(2 / 5)
    assert metrics["recall@1"] == pytest.approx(1 / 3)  # u3's target "a"
    assert result["settings"]["beyond_accuracy"] is True
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())


def test_evaluate_exclude_seen_and_switch_off():
    result = evaluate(_Fixed(["a", "b", "c", "d", "e"]), _dataset(), ks=(1,), exclude_seen=True,
                      beyond_accuracy=False, progress=False)
    assert "coverage@1" not in result["metrics"]
    # u1 saw a,b,c -> gets d (its target); u2 saw b,c,a -> gets d (target e); u3 saw c,a,b -> d
    assert result["metrics"]["recall@1"] == pytest.approx(1 / 3)


def test_popularity_percentiles_of_empty_catalogue():
    assert popularity_percentiles(np.zeros(0)).size == 0
