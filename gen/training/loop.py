"""The one training loop every semid trainer runs: epochs, validation, checkpoints, budget, resume.

A trainer supplies a :class:`Trainable` (its model, its batches and its loss)
and gets, the same way for every model:

- epochs of seeded batches, resumable mid-epoch (``LoopState.batch``);
- validation every ``eval_every`` epochs on rank 0, ``best`` written when the
  score improves, early stopping after ``patience`` validations without one;
- ``last`` written every ``checkpoint_minutes`` (or ``checkpoint_steps``), at
  every epoch end and on every stop, so a killed run resumes from it;
- one time budget (:class:`Budget`): wall time of this invocation, validation
  included. Training stops early enough that the final validation fits, using
  the duration of the previous validation; before any validation has run its
  cost is unknown, so a budget that ends before the first validation ends
  without one and ``best`` holds the final weights;
- one stop vocabulary (:data:`STOP_REASONS`) in the log, the state and the summary;
- Ctrl-C writes ``last`` and records ``interrupted`` before re-raising.

Checkpoint layout and atomic writes are :mod:`semid.gen.runs`'.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from ..runs import RunDirectory, Writer
from .distributed import Distributed
from .stopping import Budget, LoopSettings, LoopState

__all__ = ["Trainable", "summarize", "train_loop"]

logger = logging.getLogger(__name__)


class Trainable(Protocol):
    """What a model brings to :func:`train_loop`.

    Attributes:
        name: shown in progress bars and log lines (``"tiger"``, ``"sasrec"``).
    """

    name: str

    def epoch_batches(self, epoch: int) -> Sequence[Any]:
        """This rank's batches of epoch ``epoch`` (0-based), in a order seeded by the epoch."""

    def train_step(self, batch: Any) -> tuple[float, int]:
        """One optimizer step; returns ``(loss, training targets in the step over all ranks)``."""

    def validate(self) -> dict[str, Any]:
        """Validation metrics (rank 0 only); must contain the loop's ``metric``.

        Called only when ``LoopSettings.eval_every > 0``; a trainable that never validates
        (LC-Rec today) need not define it, and ``best`` then holds the final weights.
        """

    def weight_writers(self) -> Mapping[str, Writer]:
        """Writers of the files that hold the model (``best`` and ``last``)."""

    def training_writers(self) -> Mapping[str, Writer]:
        """Writers of optimizer, schedule and random states (``last`` only)."""

    def restore(self, directory: Path) -> None:
        """Load weights and training state from a verified ``last`` checkpoint directory."""


def train_loop(
    trainable: Trainable,
    run: RunDirectory,
    settings: LoopSettings,
    *,
    budget: Budget,
    dist: Distributed | None = None,
    progress: bool = True,
) -> LoopState:
    """Train ``trainable`` in ``run`` until a stop reason applies; returns the final state.

    A run with a ``last`` checkpoint continues from it (the caller decided that
    resuming is wanted when it opened the run). Only rank 0 writes to ``run``.
    """
    settings.validate()
    dist = dist or Distributed()
    state = LoopState()
    if run.has_checkpoint("last"):
        directory, stored = run.load_checkpoint("last")
        state = LoopState.from_dict(stored.get("loop", {}))
        trainable.restore(directory)
        if state.finished(settings):
            logger.info("%s already stopped (%s at epoch %d); nothing to do", run.path, state.stopped, state.epoch)
            return state
        logger.info("resuming %s at epoch %d, batch %d (step %d)", run.path, state.epoch, state.batch, state.step)
        if dist.is_main:
            run.log("resume", epoch=state.epoch, batch=state.batch, step=state.step)
        state.stopped = None

    def checkpoint(name: str) -> None:
        if dist.is_main:
            writers = dict(trainable.weight_writers())
            if name == "last":
                writers.update(trainable.training_writers())
            run.save_checkpoint(name, writers, {"loop": state.to_dict()})

    steps_now = 0
    last_checkpoint = time.monotonic()
    try:
        while state.stopped is None:
            if state.epoch >= settings.max_epochs:
                state.stopped = "max_epochs"
                break
            batches = trainable.epoch_batches(state.epoch)
            epoch_loss, epoch_targets = 0.0, 0
            started = epoch_started = time.monotonic()  # started: since the last checkpoint's accounting
            bar = tqdm(total=len(batches), initial=state.batch, desc=f"{trainable.name} epoch {state.epoch + 1}",
                       unit="batch", disable=not (progress and dist.is_main), leave=False)
            with bar:
                for b in range(state.batch, len(batches)):
                    loss, targets = trainable.train_step(batches[b])
                    state.step += 1
                    state.batch = b + 1
                    state.targets_seen += targets
                    epoch_loss += loss * targets
                    epoch_targets += targets
                    steps_now += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}")
                    out_of_time, due, step_limit = dist.any(
                        budget.exhausted(reserve=state.validation_seconds or 0.0),
                        time.monotonic() - last_checkpoint >= 60 * settings.checkpoint_minutes
                        or (settings.checkpoint_steps is not None and state.step % settings.checkpoint_steps == 0),
                        settings.stop_after_steps is not None and steps_now >= settings.stop_after_steps,
                    )
                    if due and not (out_of_time or step_limit):
                        now = time.monotonic()
                        state.train_seconds += now - started
                        started = now
                        checkpoint("last")
                        last_checkpoint = time.monotonic()
                    if out_of_time or step_limit:
                        state.stopped = "budget"
                        break
            seconds = time.monotonic() - started
            state.train_seconds += seconds
            if state.stopped is None:
                state.epoch += 1
                state.batch = 0
                if dist.is_main:
                    run.log("epoch", epoch=state.epoch, step=state.step, loss=round(epoch_loss / max(epoch_targets, 1), 5),
                            targets=epoch_targets,
                            targets_per_second=round(epoch_targets / max(time.monotonic() - epoch_started, 1e-9), 1))
            if _validation_due(state, settings):
                _validate(trainable, run, settings, state, dist, checkpoint)
            checkpoint("last")
            last_checkpoint = time.monotonic()
    except KeyboardInterrupt:
        state.stopped = "interrupted"
        if state.step > 0:
            checkpoint("last")
        if dist.is_main:
            run.log("stop", reason="interrupted", epoch=state.epoch, step=state.step)
        logger.warning("interrupted; %s resumes from its last checkpoint with --resume", run.path)
        raise
    if not run.has_checkpoint("best") and state.step > 0:
        # Never validated (eval_every=0, or a budget that ended first): the final weights are the best known.
        checkpoint("best")
    checkpoint("last")
    if dist.is_main:
        run.log("stop", reason=state.stopped, epoch=state.epoch, step=state.step, best_epoch=state.best_epoch,
                best_score=state.best_score, metric=settings.metric, train_seconds=round(state.train_seconds, 1),
                targets_seen=state.targets_seen, wall_seconds=round(budget.elapsed(), 1))
    dist.barrier()
    return state


def _validation_due(state: LoopState, settings: LoopSettings) -> bool:
    if settings.eval_every == 0 or state.step == 0:
        return False
    if state.stopped == "budget":
        # Validate at a budget stop only when a previous validation says it fits.
        return state.validation_seconds is not None
    if state.stopped is not None:
        return False
    return state.epoch % settings.eval_every == 0 or state.epoch >= settings.max_epochs


def _validate(trainable: Trainable, run: RunDirectory, settings: LoopSettings, state: LoopState,
              dist: Distributed, checkpoint) -> None:
    """Validate on rank 0, keep the best weights, decide early stopping on every rank."""
    patience_spent = False
    if dist.is_main:
        started = time.monotonic()
        metrics = trainable.validate()
        state.validation_seconds = round(time.monotonic() - started, 3)
        if settings.metric not in metrics:
            raise KeyError(f"{trainable.name}: validation returned no {settings.metric!r} (got {sorted(metrics)})")
        score = float(metrics[settings.metric])
        run.log("valid", epoch=state.epoch, step=state.step, seconds=state.validation_seconds, **metrics)
        if state.best_score is None or score > state.best_score:
            state.best_score, state.best_epoch, state.best_step, state.bad_evaluations = score, state.epoch, state.step, 0
            checkpoint("best")
        else:
            state.bad_evaluations += 1
        patience_spent = settings.patience is not None and state.bad_evaluations >= settings.patience
    spent, seconds = dist.from_main(patience_spent, state.validation_seconds or 0.0)
    state.validation_seconds = seconds  # every rank keeps the same budget reserve
    if spent and state.stopped is None:
        state.stopped = "patience"


def summarize(run: RunDirectory, state: LoopState, settings: LoopSettings, **extra: Any) -> dict[str, Any]:
    """The summary every trainer returns (and ``semid train ...`` prints), same keys for every model."""
    return {
        "run": str(run.path),
        "stopped": state.stopped,
        "epochs": state.epoch,
        "steps": state.step,
        "targets_seen": state.targets_seen,
        "best_epoch": state.best_epoch,
        "best_step": state.best_step,
        "metric": settings.metric,
        f"best_valid_{settings.metric}": state.best_score,
        "train_seconds": round(state.train_seconds, 1),
        **extra,
    }
