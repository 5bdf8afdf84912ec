"""dataset_stats: counts, length quantiles, coverage, leave-one-out readiness."""

from __future__ import annotations

import logging

import pytest

from semid.data import Dataset, ItemTable, Sequences, load_dataset
from semid.data.stats import dataset_stats
from semid.evaluation import leave_one_out


def small_dataset() -> Dataset:
    items = ItemTable([
        {"item_id": "a", "title": "A", "brand": ""},
        {"item_id": "b", "title": "B", "brand": "X"},
        {"item_id": "c"},
        {"item_id": "d", "title": "never bought"},
    ])
    sequences = Sequences(
        ["u1", "u2", "u3", "u4"],
        [["a", "b", "c", "a"], ["b"], ["a", "c"], ["c", "b", "a"]],
        [[1.0, 2.0, 3.0, 4.0], None, None, None],
    )
    return Dataset("small", items, sequences)


def test_counts_quantiles_and_density():
    stats = dataset_stats(small_dataset())
    assert (stats["users"], stats["items"], stats["interactions"]) == (4, 4, 10)
    assert stats["density"] == pytest.approx(10 / 16)
    assert stats["sequence_length"] == {
        "min": 1, "p25": 1.75, "median": 2.5, "p75": 3.25, "p90": 3.7, "max": 4, "mean": 2.5,
    }
    assert stats["repeated_interactions"] == 1
    assert stats["items_never_interacted"] == 1
    assert stats["field_coverage"] == {"brand": 0.25, "title": 0.75}
    assert stats["timestamps"] == "partial" and stats["ratings"] == "none"


def test_one_item_users_are_reported_and_skipped_by_the_split(caplog):
    data = small_dataset()
    with caplog.at_level(logging.WARNING, logger="semid.evaluation.split"):
        stats = dataset_stats(data)
    assert stats["leave_one_out"] == {
        "users_without_test_case": 1,  # u2 has one item
        "users_without_valid_case": 2,  # u2 and u3 have fewer than three
        "test_cases": 3,
        "valid_cases": 2,
    }
    assert "1 users too short for a test case" in caplog.text
    split = leave_one_out(data)
    assert [c.user_id for c in split.test] == ["u1", "u3", "u4"]


def test_builtin_dataset_stats():
    stats = dataset_stats(load_dataset("builtin:all_beauty_2023"))
    assert (stats["users"], stats["items"], stats["interactions"]) == (253, 356, 2535)
    assert stats["sequence_length"]["min"] == 5 and stats["field_coverage"]["title"] == 1.0
    assert stats["timestamps"] == "all" and stats["ratings"] == "all"
