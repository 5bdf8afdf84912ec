"""Candidate lists for LLM rankers, covering the published protocols.

- :func:`sample_candidates`: ``n - 1`` random items the user has not interacted
  with plus the ground truth, shuffled (LLMRank, LLaRA, S-DPO: 20 candidates) or
  with the ground truth at a fixed position (LLMRank's position-bias study);
  seeded per user, so the same user always gets the same list.
- :func:`retrieved_candidates`: the top-``n`` of any semid recommender (popularity,
  SASRec, TIGER, LC-Rec runs), without forcing the ground truth in (LLMRank's
  realistic setting); or with it forced in, replacing the last retrieved item.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from semid.errors import ParameterError
from semid.evaluation.split import EvalCase

__all__ = ["CandidateList", "retrieved_candidates", "sample_candidates"]


@dataclass(frozen=True)
class CandidateList:
    """One ranking task: a user's history, the held-out item and the candidates shown to the model.

    Attributes:
        target_position: index of ``target`` in ``candidates``; ``None`` when it is not among them.
        source: how the list was made (``"random"``, ``"random@5"``, ``"retrieved:<name>"``).
    """

    user_id: str
    history: tuple[str, ...]
    target: str
    candidates: tuple[str, ...]
    target_position: int | None
    source: str


def _user_rng(seed: int, user_id: str) -> np.random.Generator:
    # crc32, not hash(): Python salts str hashes per process, which would break reproducibility.
    return np.random.default_rng([seed, zlib.crc32(user_id.encode("utf-8"))])


def _draw_unseen(rng: np.random.Generator, items: np.ndarray, seen: set[str], k: int, user: str) -> list[str]:
    """``k`` distinct items outside ``seen``: rejection sampling (histories are small against a
    catalogue), falling back to drawing from the explicit pool when that keeps failing."""
    chosen: list[str] = []
    taken: set[str] = set()
    for _ in range(20 * k + 100):
        item = items[int(rng.integers(len(items)))]
        if item not in seen and item not in taken:
            chosen.append(item)
            taken.add(item)
            if len(chosen) == k:
                return chosen
    pool = [i for i in items if i not in seen and i not in taken]
    if len(pool) < k - len(chosen):
        raise ParameterError(
            f"user {user!r} has only {len(pool) + len(chosen)} unseen items for {k} negatives; ask for fewer candidates"
        )
    return chosen + [pool[j] for j in rng.choice(len(pool), size=k - len(chosen), replace=False)]


def sample_candidates(cases: Sequence[EvalCase], item_ids: Sequence[str], *, n: int = 20, seed: int = 0,
                      position: str | int = "shuffle", full_histories: dict[str, set[str]] | None = None
                      ) -> list[CandidateList]:
    """``n`` candidates per case: the target and ``n - 1`` random items outside the user's history.

    Args:
        position: ``"shuffle"`` or a fixed 0-based position of the target.
        full_histories: per user, every item seen before the target (default: the
            case history); negatives avoid them.

    Raises:
        ParameterError: ``n`` < 2, a position outside the list, or a user whose
            unseen items are fewer than ``n - 1`` (the catalogue is too small).
    """
    if n < 2:
        raise ParameterError(f"the candidate count must be >= 2, got {n}")
    if position != "shuffle" and not (isinstance(position, int) and 0 <= position < n):
        raise ParameterError(f"target position must be 'shuffle' or in [0, {n - 1}], got {position!r}")
    items = np.asarray(list(item_ids), dtype=object)
    if n > len(items):
        raise ParameterError(f"{n} candidates asked for, but the catalogue has only {len(items)} items")
    out = []
    for case in cases:
        seen = set(full_histories.get(case.user_id, case.history) if full_histories else case.history)
        seen |= set(case.history) | {case.target}
        rng = _user_rng(seed, case.user_id)
        negatives = _draw_unseen(rng, items, seen, n - 1, case.user_id)
        where = int(rng.integers(n)) if position == "shuffle" else int(position)
        candidates = negatives[:where] + [case.target] + negatives[where:]
        out.append(CandidateList(case.user_id, tuple(case.history), case.target, tuple(candidates), where,
                                 "random" if position == "shuffle" else f"random@{position}"))
    return out


def retrieved_candidates(cases: Sequence[EvalCase], recommender, *, n: int = 20, name: str = "retriever",
                         force_target: bool = False, exclude_seen: bool = True) -> list[CandidateList]:
    """The top-``n`` items of ``recommender`` per case (any :class:`semid.evaluation.Recommender`).

    Args:
        force_target: put the target in when the retriever missed it, replacing
            the last retrieved item (the list is then shuffled no further: the
            retriever's order is kept, the target sits at the end).
        exclude_seen: the retriever never proposes the case history.
    """
    if n < 1:
        raise ParameterError(f"the candidate count must be >= 1, got {n}")
    histories = [c.history for c in cases]
    exclude = [set(c.history) for c in cases] if exclude_seen else None
    lists = recommender.recommend(histories, n, exclude=exclude, users=[c.user_id for c in cases])
    out = []
    for case, ranked in zip(cases, lists):
        candidates = [i for i in ranked if i is not None][:n]
        if force_target and case.target not in candidates:
            candidates = candidates[: n - 1] + [case.target]
        where = candidates.index(case.target) if case.target in candidates else None
        out.append(CandidateList(case.user_id, tuple(case.history), case.target, tuple(candidates), where,
                                 f"retrieved:{name}" + ("+target" if force_target else "")))
    return out
