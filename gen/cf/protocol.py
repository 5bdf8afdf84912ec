"""Which split a CF run learns from and is validated on: leave-one-out or the papers' random hold-out.

A run records its protocol in ``run.json`` (``config.protocol``), so ``semid cf
evaluate`` and resuming rebuild the same split:

- ``leave-one-out`` (default): train on ``s[:-2]`` per user, validate on the
  second-to-last item (:mod:`semid.evaluation.split`). Graph models (LightGCN,
  RLMRec, AlphaRec) are validated with the user's earlier items removed from the
  candidates: they are trained to score exactly those items high and ignore
  order, so without the mask their validation prefers the least-fitted epoch.
- ``holdout``: the random per-user split of the graph-CF papers
  (:mod:`semid.evaluation.holdout`), validated by Recall/NDCG with the training
  items masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semid.errors import ParameterError
from semid.evaluation.holdout import DEFAULT_RATIOS, Holdout, check_ratios, random_holdout

__all__ = ["PROTOCOLS", "SplitProtocol"]

PROTOCOLS = ("leave-one-out", "holdout")


@dataclass(frozen=True)
class SplitProtocol:
    """A CF run's split.

    Attributes:
        name: ``"leave-one-out"`` or ``"holdout"``.
            (With either, ``ratios`` must be three positive shares summing to 1.)
        ratios: (train, valid, test) shares of the hold-out split.
        split_seed: seed of the hold-out split.
    """

    name: str = "leave-one-out"
    ratios: tuple[float, float, float] = DEFAULT_RATIOS
    split_seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise ParameterError(f"unknown protocol {self.name!r}; choose from {', '.join(PROTOCOLS)}")
        object.__setattr__(self, "ratios", check_ratios(self.ratios))

    @property
    def is_holdout(self) -> bool:
        return self.name == "holdout"

    def holdout(self, dataset) -> Holdout | None:
        """The hold-out split of ``dataset`` (None under leave-one-out)."""
        return random_holdout(dataset, ratios=self.ratios, seed=self.split_seed) if self.is_holdout else None

    def to_json(self) -> dict[str, Any]:
        if not self.is_holdout:
            return {"name": self.name}
        return {"name": self.name, "ratios": list(self.ratios), "split_seed": self.split_seed}

    @classmethod
    def from_json(cls, stored: Mapping[str, Any] | None) -> SplitProtocol:
        """Read ``run.json``'s protocol; runs written before protocols existed are leave-one-out."""
        if not stored:
            return cls()
        ratios = tuple(float(r) for r in stored.get("ratios", DEFAULT_RATIOS))
        return cls(str(stored.get("name", "leave-one-out")), ratios, int(stored.get("split_seed", 0)))  # type: ignore[arg-type]
