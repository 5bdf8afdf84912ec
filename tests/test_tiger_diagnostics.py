"""Diagnostics and schedule arithmetic against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semid.evaluation.split import EvalCase
from semid.gen.tiger.config import TigerConfig
from semid.gen.tiger.diagnostics import code_table_nll
from semid.gen.collapse import collapse_floor, distinct_items
from semid.gen.tiger.train import lr_factor


class _Layout:
    """Two-token codes: a -> (2, 5), b -> (2, 6), c -> (3, 5)."""

    max_target_len = 2
    item_tokens = [np.array([2, 5]), np.array([2, 6]), np.array([3, 5])]

    def position(self, item: str) -> int:
        return "abc".index(item)


def test_code_tables_match_hand_counts():
    train = ["a", "a", "b", "c"]  # position 0: token 2 x3, 3 x1; position 1 after 2: 5 x2, 6 x1
    tables = code_table_nll(_Layout(), train, [EvalCase("u", ("a",), "b")])
    # unigram p0(2) = (3 + 1) / (4 + 2); p1(6) = (1 + 1) / (4 + 2)
    assert tables["unigram"] == [round(-math.log(4 / 6), 4), round(-math.log(2 / 6), 4)]
    # bigram p1(6 | 2) = (1 + 1) / (3 + 2); position 0 has no context
    assert tables["bigram"] == [round(-math.log(4 / 6), 4), round(-math.log(2 / 5), 4)]


def test_distinct_items_and_floor():
    assert distinct_items([["a", "b", None], ["b", "c"]]) == 3
    assert distinct_items([["a", "b", "c"]], k=2) == 2
    assert collapse_floor(2000, 12101) == 60  # 0.5% of the 12,101 items the lists could hold
    assert collapse_floor(3, 1000) == 10


def test_learning_rate_schedules():
    warm = lr_factor(TigerConfig(warmup_steps=10, schedule="constant"))
    assert [warm(s) for s in (0, 4, 9, 10_000)] == pytest.approx([0.1, 0.5, 1.0, 1.0])
    decay = lr_factor(TigerConfig(warmup_steps=0, schedule="inverse_sqrt", decay_after=100))
    assert decay(99) == 1.0 and decay(399) == pytest.approx(0.5)
