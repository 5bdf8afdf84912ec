"""Metrics of ranking a small candidate list (LLM rankers), with both published HR@1 definitions.

Two incompatible "HR@1" exist in the literature: LLaRA divides hits by the
*valid* answers, S-DPO (and most others) by *all* prompts. Both are reported,
next to the valid ratio, so numbers are comparable with either paper.

NDCG over candidates follows LLMRank's score rule: parsed candidates in the
order the model gave them, every unparsed candidate tied at the bottom. A target
inside the tie gets the mean gain of the tied positions (the expectation under
a random tie-break), so an unparsable answer is never scored as a perfect one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from semid.errors import ParameterError

__all__ = ["auc", "candidate_ndcg", "hit_rate_at_1", "popularity_on_candidates"]


def hit_rate_at_1(first: Sequence[str | None], valid: Sequence[bool], targets: Sequence[str]) -> dict[str, float]:
    """``hr@1_valid`` (hits / valid answers), ``hr@1_all`` (hits / all prompts) and ``valid_ratio``.

    ``first[i]`` is the item the answer puts first (``None`` when nothing parsed).
    """
    if not (len(first) == len(valid) == len(targets)):
        raise ParameterError("first, valid and targets must have one entry per prompt")
    n = len(targets)
    hits = sum(1 for f, v, t in zip(first, valid, targets) if v and f == t)
    n_valid = sum(1 for v in valid if v)
    return {
        "hr@1_valid": hits / n_valid if n_valid else 0.0,
        "hr@1_all": hits / n if n else 0.0,
        "valid_ratio": n_valid / n if n else 0.0,
    }


def _gain(rank: int, k: int) -> float:
    return 1.0 / math.log2(rank + 1) if rank <= k else 0.0


def candidate_ndcg(ranked: Sequence[Sequence[str]], candidates: Sequence[Sequence[str]], targets: Sequence[str],
                   ks: Sequence[int] = (1, 5, 10, 20)) -> dict[str, float]:
    """NDCG@K (and recall@K) within each candidate list, unparsed candidates tied at the bottom.

    A target missing from its candidate list (a retriever that missed it) scores 0.
    """
    if not (len(ranked) == len(candidates) == len(targets)):
        raise ParameterError("ranked, candidates and targets must have one entry per prompt")
    out: dict[str, list[float]] = {f"{m}@{k}": [] for k in ks for m in ("ndcg", "recall")}
    for order, shown, target in zip(ranked, candidates, targets):
        order = [i for i in order if i in set(shown)]
        for k in ks:
            if target in order:
                rank = order.index(target) + 1
                ndcg, recall = _gain(rank, k), float(rank <= k)
            elif target in shown:
                tied = range(len(order) + 1, len(shown) + 1)  # the target's possible positions
                ndcg = float(np.mean([_gain(r, k) for r in tied]))
                recall = float(np.mean([r <= k for r in tied]))
            else:
                ndcg = recall = 0.0
            out[f"ndcg@{k}"].append(ndcg)
            out[f"recall@{k}"].append(recall)
    return {key: float(np.mean(values)) if values else 0.0 for key, values in out.items()}


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half); ``nan`` without both classes."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=int)
    if scores.shape != labels.shape:
        raise ParameterError(f"{scores.shape[0]} scores for {labels.shape[0]} labels")
    positive, negative = scores[labels == 1], scores[labels == 0]
    if not len(positive) or not len(negative):
        return float("nan")
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positive) * len(negative)))


def popularity_on_candidates(train_sequences: Sequence[Sequence[str]], candidates: Sequence[Sequence[str]],
                             targets: Sequence[str], ks: Sequence[int] = (1, 5, 10, 20)) -> dict[str, float]:
    """The most-popular baseline on the same candidate lists an LLM method was scored on.

    Each list is ordered by the candidates' counts in ``train_sequences`` (the
    leave-one-out training part), ties kept in the list's own (shuffled) order; the
    metrics are :func:`candidate_ndcg` and :func:`hit_rate_at_1` of that order (every
    answer valid), so an LLM method's number has its yardstick on identical prompts.
    """
    counts: dict[str, int] = {}
    for sequence in train_sequences:
        for item in sequence:
            counts[item] = counts.get(item, 0) + 1
    ranked = [sorted(shown, key=lambda i: -counts.get(i, 0)) for shown in candidates]
    metrics = candidate_ndcg(ranked, candidates, targets, ks=ks)
    metrics.update(hit_rate_at_1([r[0] if r else None for r in ranked], [bool(r) for r in ranked], targets))
    return {k: round(v, 6) for k, v in metrics.items()}
