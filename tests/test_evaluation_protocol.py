"""The evaluation protocol against hand-computed values: metrics, leave-one-out, exclusion, popularity."""

from __future__ import annotations

import math

import pytest

import semid

from semid.data.dataset import Dataset, ItemTable, Sequences
from semid.errors import ParameterError
from semid.evaluation import MostPopular, evaluate, leave_one_out
from semid.evaluation.metrics import hit_ranks, ranking_metrics


def test_recall_and_ndcg_by_hand():
    ranked = [["a", "b", "c"], [None, "x", "t"], ["q"], []]
    targets = ["b", "t", "z", "a"]
    assert hit_ranks(ranked, targets).tolist() == [2, 3, 0, 0]  # None takes its rank and is a miss
    m = ranking_metrics(ranked, targets, ks=(1, 2, 3))
    assert m["recall@1"] == 0.0 and m["ndcg@1"] == 0.0
    assert m["recall@2"] == pytest.approx(1 / 4) and m["ndcg@2"] == pytest.approx((1 / math.log2(3)) / 4)
    assert m["recall@3"] == pytest.approx(2 / 4)
    assert m["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / 4)
    with pytest.raises(ParameterError, match="K must be >= 1"):
        ranking_metrics(ranked, targets, ks=(0,))
    with pytest.raises(ParameterError, match="one list per target"):
        hit_ranks(ranked[:2], targets)


def _dataset(sequences: dict[str, list[str]], n_items: int = 40) -> Dataset:
    items = ItemTable([{"item_id": f"i{k}", "title": f"item {k}"} for k in range(n_items)])
    return Dataset("hand", items, Sequences(list(sequences), list(sequences.values())))


def test_leave_one_out_histories_targets_and_the_history_cut():
    long = [f"i{k}" for k in range(25)]
    split = leave_one_out(_dataset({"u1": long, "u2": ["i1", "i2"], "u3": ["i3"]}))
    assert split.train_sequences == [long[:-2], [], []]
    (test_u1, test_u2), (valid_u1,) = split.test, split.valid
    assert test_u1.target == "i24" and test_u1.history == tuple(long[4:24])  # last 20 before the target
    assert valid_u1.target == "i23" and valid_u1.history == tuple(long[3:23])
    assert test_u2.history == ("i1",) and test_u2.target == "i2"
    assert split.skipped == {"valid": 2, "test": 1}
    assert leave_one_out(_dataset({"u1": long}), max_history=3).test[0].history == ("i21", "i22", "i23")
    with pytest.raises(ParameterError, match="max_history"):
        leave_one_out(_dataset({"u1": long}), max_history=0)


def test_most_popular_counts_training_items_only_and_breaks_ties_by_item_order():
    # i9 is every user's test item (never counted); i5 and i2 are tied at 2 training uses.
    data = _dataset({"a": ["i5", "i2", "i7", "i9"], "b": ["i2", "i5", "i8", "i9"], "c": ["i3", "i1", "i9"]}, 10)
    ranked = MostPopular(data).ranked
    assert ranked[:3] == ["i2", "i5", "i3"]  # 2, 2 (item order breaks the tie), then 1
    assert ranked.index("i9") > ranked.index("i3") and len(ranked) == 10  # unseen items come last, in item order


def test_exclude_seen_removes_items_beyond_the_truncated_history():
    """An item the user saw 25 interactions ago is outside the 20-item history but still excluded."""
    old_history = ["i0"] + [f"i{k}" for k in range(10, 36)]  # i0 first, then 26 other items
    data = _dataset({"short": ["i0", "i1", "i2"], "long": old_history})
    received = {}

    class Spy(MostPopular):
        def recommend(self, histories, k, *, exclude=None, users=None):
            received.update(zip(users, exclude))
            return super().recommend(histories, k, exclude=exclude, users=users)

    result = evaluate(Spy(data), data, ks=(5,), exclude_seen=True, progress=False, beyond_accuracy=False)
    case = next(c for c in leave_one_out(data).test if c.user_id == "long")
    assert "i0" not in case.history and len(case.history) == 20
    assert received["long"] == set(old_history[:-1])  # every earlier item, not only the last 20
    assert result["settings"]["exclude_seen"] is True and result["metrics"]["invalid_rate"] == 0.0
    valid = evaluate(Spy(data), data, split="valid", ks=(5,), exclude_seen=True, progress=False,
                     beyond_accuracy=False)
    assert received["long"] == set(old_history[:-2]) and valid["n_users"] == 2


def test_invalid_rate_counts_unfilled_slots():
    class Short:
        def recommend(self, histories, k, *, exclude=None, users=None):
            return [["i1", None] for _ in histories]  # two of k slots, one of them invalid

    data = _dataset({"a": ["i1", "i2", "i3"], "b": ["i2", "i3", "i4"]})
    result = evaluate(Short(), data, ks=(4,), progress=False, beyond_accuracy=False)
    assert result["metrics"]["invalid_rate"] == pytest.approx(3 / 4)


def test_random_items_is_a_seeded_uniform_floor():
    import json

    from click.testing import CliRunner

    from semid.cli.main import cli
    from semid.evaluation import RandomItems

    data = semid.load_dataset("builtin:all_beauty_2023")
    histories = [s[:-1] for s in data.sequences.items[:50]]
    a = RandomItems(data, seed=3).recommend(histories, 10, exclude=[set(h) for h in histories])
    assert a == RandomItems(data, seed=3).recommend(histories, 10, exclude=[set(h) for h in histories])
    assert all(len(row) == 10 == len(set(row)) and not set(row) & set(h) for row, h in zip(a, histories))
    assert len({tuple(row) for row in a}) == 50  # a fresh permutation per user
    result = CliRunner().invoke(cli, ["evaluate", "random", "--data", "builtin:all_beauty_2023", "--k", "10"])
    assert result.exit_code == 0, result.output
    recall = json.loads(result.stdout)["metrics"]["recall@10"]
    assert abs(recall - 10 / len(data.items)) < 0.03  # chance level


def test_a_sample_of_users_is_the_one_training_validates_on():
    """``evaluate(n_users=N, seed=S)`` draws the users of ``sample_cases`` (training's validation sample)."""
    from semid.evaluation import sample_cases

    data = _dataset({f"u{k}": [f"i{(k + j) % 40}" for j in range(5)] for k in range(30)})
    asked = []

    class Spy(MostPopular):
        def recommend(self, histories, k, *, exclude=None, users=None):
            asked.extend(users)
            return super().recommend(histories, k, exclude=exclude, users=users)

    for seed in (0, 3):
        asked.clear()
        result = evaluate(Spy(data), data, split="valid", ks=(5,), n_users=7, seed=seed, progress=False,
                          beyond_accuracy=False)
        expected = [c.user_id for c in sample_cases(leave_one_out(data).valid, 7, seed)]
        assert sorted(asked) == sorted(expected) and result["n_users"] == 7
    assert sample_cases(leave_one_out(data).valid, 0, 0) == leave_one_out(data).valid


def test_metrics_by_target_count_splits_users_by_training_frequency():
    from semid.evaluation import metrics_by_target_count

    ranked = [["a", "b"], ["x", "c"], ["d"], [None, "e"]]
    targets = ["a", "c", "z", "e"]  # hits at ranks 1, 2, miss, 2
    counts = {"a": 0, "c": 3, "z": 3, "e": 50}
    rows = metrics_by_target_count(ranked, targets, counts, edges=(1, 5, 20), k=2)
    assert [r["targets"] for r in rows] == ["0", "1-4", "5-19", ">=20"]
    assert [r["users"] for r in rows] == [1, 2, 0, 1]
    assert rows[0]["recall@2"] == 1.0 and rows[0]["ndcg@2"] == 1.0
    assert rows[1]["recall@2"] == 0.5
    assert abs(rows[1]["ndcg@2"] - 0.5 / math.log2(3)) < 1e-12
    assert rows[2]["recall@2"] == 0.0 and rows[3]["recall@2"] == 1.0
    assert abs(sum(r["share"] for r in rows) - 1.0) < 1e-12
    # k=1 drops the rank-2 hits
    assert [r["recall@1"] for r in metrics_by_target_count(ranked, targets, counts, k=1)] == [1.0, 0.0, 0.0, 0.0]
    with pytest.raises(ParameterError, match="increasing"):
        metrics_by_target_count(ranked, targets, counts, edges=(5, 5))
