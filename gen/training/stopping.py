"""When training stops: the time budget, the stop vocabulary and the loop's progress record.

Every trainer in semid (TIGER, LC-Rec, SASRec, LightGCN and the adapters to
come) stops for one of the reasons in :data:`STOP_REASONS`, measures its budget
the same way (:class:`Budget`) and stores its progress as one
:class:`LoopState` in ``state.json`` of its checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

from semid.errors import ParameterError

__all__ = ["STOP_REASONS", "Budget", "LoopSettings", "LoopState"]

#: Why a training invocation ended.
#:
#: - ``max_epochs``: the configured number of epochs is done;
#: - ``patience``: ``patience`` validations in a row without a better score;
#: - ``budget``: this invocation's time budget (or step limit) is spent; resumable;
#: - ``interrupted``: Ctrl-C / SIGINT; the last checkpoint is written first; resumable.
STOP_REASONS = ("budget", "interrupted", "max_epochs", "patience")


class Budget:
    """The wall-clock budget of one invocation: everything from its start counts.

    Data preparation, training steps, validation and checkpoint writes are all
    inside it; a resumed run gets a fresh budget. ``minutes=None`` is unlimited.
    """

    def __init__(self, minutes: float | None, *, started: float | None = None):
        if minutes is not None and not minutes > 0:
            raise ParameterError(f"the time budget must be > 0 minutes, got {minutes!r}")
        self.minutes = minutes
        self.started = time.monotonic() if started is None else started

    @property
    def seconds(self) -> float:
        return math.inf if self.minutes is None else 60.0 * self.minutes

    def elapsed(self) -> float:
        """Seconds since the invocation started."""
        return time.monotonic() - self.started

    def exhausted(self, reserve: float = 0.0) -> bool:
        """True once fewer than ``reserve`` seconds are left (e.g. the cost of one more validation)."""
        return self.elapsed() + reserve >= self.seconds


@dataclass
class LoopSettings:
    """How long to train, how often to validate and to checkpoint (same meaning for every model).

    Attributes:
        max_epochs: stop after this many epochs in total (over all invocations).
        patience: stop after this many validations in a row without a better
            ``metric``; ``None`` = never stop early.
        eval_every: validate every this many epochs (and at the last epoch);
            0 = never validate (``best`` is then the final weights).
        checkpoint_minutes: also write ``last`` this often within an epoch.
        checkpoint_steps: also write ``last`` every this many optimizer steps.
        budget_minutes: wall-clock budget of this invocation (:class:`Budget`).
        stop_after_steps: end this invocation after this many optimizer steps
            (stop reason ``budget``; resumable) - for smoke runs and tests.
        metric: the validation metric that selects ``best`` (higher is better).
    """

    max_epochs: int
    patience: int | None = None
    eval_every: int = 1
    checkpoint_minutes: float = 10.0
    checkpoint_steps: int | None = None
    budget_minutes: float | None = None
    stop_after_steps: int | None = None
    metric: str = "ndcg@10"

    def validate(self) -> None:
        """Raises :class:`ParameterError` naming the first setting out of range."""
        if self.max_epochs < 1:
            raise ParameterError(f"max_epochs must be >= 1, got {self.max_epochs}")
        if self.patience is not None and self.patience < 1:
            raise ParameterError(f"patience must be >= 1, got {self.patience}")
        if self.eval_every < 0:
            raise ParameterError(f"eval_every must be >= 0 (0 = never validate), got {self.eval_every}")
        if not self.checkpoint_minutes > 0:
            raise ParameterError(f"checkpoint_minutes must be > 0, got {self.checkpoint_minutes}")
        for name in ("checkpoint_steps", "stop_after_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ParameterError(f"{name} must be >= 1, got {value}")
        if self.budget_minutes is not None and not self.budget_minutes > 0:
            raise ParameterError(f"budget_minutes must be > 0, got {self.budget_minutes}")


@dataclass
class LoopState:
    """Progress of a run, stored in every checkpoint's ``state.json`` under ``"loop"``.

    Attributes:
        epoch: finished epochs.
        batch: batches of epoch ``epoch`` already trained (mid-epoch resume point).
        step: optimizer steps in total.
        targets_seen: training targets presented to the optimizer in total.
        train_seconds: time spent in training steps, summed over invocations.
        best_score: best validation ``metric`` so far (``None`` before any validation).
        best_epoch, best_step: where it was reached.
        bad_evaluations: validations in a row without a better score.
        validation_seconds: duration of the latest validation (the budget keeps
            that much in reserve so that a final validation still fits).
        stopped: why the latest invocation ended (:data:`STOP_REASONS`), ``None`` while running.
    """

    epoch: int = 0
    batch: int = 0
    step: int = 0
    targets_seen: int = 0
    train_seconds: float = 0.0
    best_score: float | None = None
    best_epoch: int | None = None
    best_step: int | None = None
    bad_evaluations: int = 0
    validation_seconds: float | None = None
    stopped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopState:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def finished(self, settings: LoopSettings) -> bool:
        """True when resuming with ``settings`` has nothing left to do."""
        if self.epoch >= settings.max_epochs:
            return True
        return (
            self.stopped == "patience"
            and settings.patience is not None
            and self.bad_evaluations >= settings.patience
        )
