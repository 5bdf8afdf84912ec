"""The leave-one-out split, defined once and used by every model and scheme.

For each user with sequence ``s`` (oldest first):

- test: target ``s[-1]``, history ``s[:-1]`` (users with at least 2 items);
- validation: target ``s[-2]``, history ``s[:-2]`` (users with at least 3 items);
- training: ``s[:-2]`` (what indexes, co-occurrence graphs and models learn from).

Histories given to models are truncated to the most recent ``max_history``
items (20 by default, as in TIGER and P5). Users too short for a split are
counted in :attr:`LeaveOneOut.skipped` and logged, never silently dropped from a
metric's denominator for a split they belong to.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from semid.data.dataset import Dataset

from semid.errors import ParameterError

__all__ = ["EvalCase", "LeaveOneOut", "leave_one_out", "sample_cases"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_HISTORY = 20

T = TypeVar("T")


@dataclass(frozen=True)
class EvalCase:
    """One evaluation example: a user's truncated history and the held-out item."""

    user_id: str
    history: tuple[str, ...]
    target: str


@dataclass
class LeaveOneOut:
    """Result of :func:`leave_one_out`.

    Attributes:
        train_sequences: per user, the items before the validation item (may be
            empty for users with fewer than 3 items).
        train_users: user ids aligned with ``train_sequences``.
        valid: validation cases (target = second-to-last item).
        test: test cases (target = last item).
        max_history: truncation applied to case histories.
        skipped: users without a validation / test case, by split.
    """

    train_sequences: list[list[str]]
    train_users: list[str]
    valid: list[EvalCase]
    test: list[EvalCase]
    max_history: int
    skipped: dict[str, int] = field(default_factory=dict)

    def cases(self, split: str) -> list[EvalCase]:
        if split not in ("valid", "test"):
            raise ParameterError(f"split must be 'valid' or 'test', got {split!r}")
        return self.valid if split == "valid" else self.test

    def settings(self) -> dict:
        return {"protocol": "leave-one-out", "max_history": self.max_history, "skipped_users": dict(self.skipped)}


def leave_one_out(dataset: Dataset, *, max_history: int = DEFAULT_MAX_HISTORY) -> LeaveOneOut:
    """Split ``dataset`` by leave-one-out (see the module docstring)."""
    if max_history < 1:
        raise ParameterError(f"max_history must be >= 1, got {max_history}")
    train, users, valid, test = [], [], [], []
    skipped = {"valid": 0, "test": 0}
    for user, seq in zip(dataset.sequences.user_ids, dataset.sequences.items):
        users.append(user)
        train.append(list(seq[:-2]))
        if len(seq) >= 2:
            test.append(EvalCase(user, tuple(seq[:-1][-max_history:]), seq[-1]))
        else:
            skipped["test"] += 1
        if len(seq) >= 3:
            valid.append(EvalCase(user, tuple(seq[:-2][-max_history:]), seq[-2]))
        else:
            skipped["valid"] += 1
    if skipped["test"] or skipped["valid"]:
        logger.warning(
            "leave-one-out: %d users too short for a test case (< 2 items), %d for a validation case (< 3 items)",
            skipped["test"], skipped["valid"],
        )
    return LeaveOneOut(train, users, valid, test, max_history, skipped)


def sample_cases(cases: Sequence[T], n: int, seed: int) -> list[T]:
    """The seeded sample of ``n`` cases, kept in their order; all of them when ``n`` is 0 or too large.

    The one sampler of users: training's validation, the diagnostics and
    ``evaluate(n_users=...)`` draw the same users for the same seed, so a number a
    training log shows can be reproduced by ``semid evaluate --users N --seed S``.
    """
    if not n or n >= len(cases):
        return list(cases)
    chosen = np.sort(np.random.default_rng(seed).choice(len(cases), size=n, replace=False))
    return [cases[i] for i in chosen]
