"""Learning-rate schedules every semid trainer shares: warm-up, then one decay shape.

A :class:`Schedule` maps an optimizer step (0-based) to a multiplier of the peak
learning rate. Warm-up rises linearly from ``floor`` to 1 over ``warmup_steps``
steps; after it, ``shape`` decides:

- ``constant``: 1 until the end.
- ``linear``: straight down to ``floor`` at ``total_steps``.
- ``cosine``: half a cosine down to ``floor`` at ``total_steps``.
- ``inverse_sqrt``: 1 until ``decay_after`` steps, then ``sqrt(decay_after / step)``
  (the TIGER paper's schedule; needs no horizon).
- ``wsd`` (warm-up, stable, decay): 1 until the last ``cooldown`` fraction of
  ``total_steps``, then linearly down to ``floor``. Unlike ``linear`` and ``cosine``
  it trains at the peak rate for most of the run, so its checkpoints before the
  cool-down equal a constant-rate run's, and a cool-down placed at any budget
  gives most of a full decay's gain (Hägele et al., 2024).

Shapes that need a horizon (``linear``, ``cosine``, ``wsd``) refuse a
``total_steps`` of zero, so a trainer cannot silently decay over nothing.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from semid.errors import ParameterError

__all__ = ["SHAPES", "Schedule"]

#: Every decay shape a :class:`Schedule` knows.
SHAPES = ("constant", "cosine", "inverse_sqrt", "linear", "wsd")
_NEEDS_HORIZON = frozenset({"cosine", "linear", "wsd"})

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    """Warm-up then ``shape``; call it with a 0-based step to get the multiplier of the peak rate."""

    shape: str = "constant"
    total_steps: int = 0
    warmup_steps: int = 0
    floor: float = 0.0
    decay_after: int = 0
    cooldown: float = 0.2

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ParameterError(f"schedule: unknown shape {self.shape!r}; expected one of {', '.join(SHAPES)}")
        if self.shape in _NEEDS_HORIZON and self.total_steps <= 0:
            raise ParameterError(f"schedule {self.shape!r} decays to the last step and needs total_steps > 0, "
                                 f"got {self.total_steps}")
        if not 0.0 <= self.floor < 1.0:
            raise ParameterError(f"schedule: floor must be in [0, 1), got {self.floor}")
        if not 0.0 < self.cooldown <= 1.0:
            raise ParameterError(f"schedule: cooldown must be in (0, 1], got {self.cooldown}")
        if self.warmup_steps < 0 or self.decay_after < 0:
            raise ParameterError("schedule: warmup_steps and decay_after must be >= 0")
        if 0 < self.total_steps <= self.warmup_steps:
            # Few-shot runs hit this (TALLRec's 16 samples at 128 per step: a 20-step warm-up over 6 steps
            # never lets the rate above 30% of its peak); legal, but rarely what was meant.
            logger.warning("schedule: the %d-step warm-up is not shorter than the run's %d steps; the learning "
                           "rate peaks at %.0f%% of the set value", self.warmup_steps, self.total_steps,
                           100.0 * self(self.total_steps - 1))

    def __call__(self, step: int) -> float:
        low = self.floor
        if step < self.warmup_steps:
            return low + (1.0 - low) * (step + 1) / self.warmup_steps
        if self.shape == "constant":
            return 1.0
        if self.shape == "inverse_sqrt":
            after = max(self.decay_after, 1)
            return 1.0 if step + 1 <= after else math.sqrt(after / (step + 1))
        if self.shape == "wsd":
            start = max(self.warmup_steps, round(self.total_steps * (1.0 - self.cooldown)))
        else:
            start = self.warmup_steps
        if step < start:
            return 1.0
        progress = min((step - start) / max(1, self.total_steps - start), 1.0)
        remaining = 0.5 * (1.0 + math.cos(math.pi * progress)) if self.shape == "cosine" else 1.0 - progress
        return low + (1.0 - low) * remaining
