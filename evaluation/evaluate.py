"""``evaluate``: the one entry every model (SASRec, TIGER, LLM generators) uses.

A model only needs a ``recommend`` method (see :class:`Recommender`); this
module applies the leave-one-out split, optional seeded user sampling, batching
and the metrics, and returns a JSON-serialisable dict with the exact settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from tqdm.auto import tqdm

from semid.data.dataset import Dataset

from .metrics import DEFAULT_KS, ranking_metrics
from .split import DEFAULT_MAX_HISTORY, EvalCase, leave_one_out, sample_cases

__all__ = ["Recommender", "evaluate", "evaluate_cases"]

logger = logging.getLogger(__name__)


class Recommender(Protocol):
    """Anything that ranks items for histories."""

    def recommend(
        self,
        histories: Sequence[Sequence[str]],
        k: int,
        *,
        exclude: Sequence[set[str]] | None = None,
        users: Sequence[str] | None = None,
    ) -> list[list[str | None]]:
        """Per history, up to ``k`` item ids best first; ``None`` marks an invalid output."""
        ...


def evaluate_cases(
    recommender: Recommender,
    cases: Sequence[EvalCase],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    exclude_seen: bool = False,
    batch_size: int = 256,
    full_histories: dict[str, set[str]] | None = None,
    progress: bool = True,
) -> tuple[dict[str, float], list[list[str | None]]]:
    """Run ``recommender`` over ``cases`` and score the lists.

    ``exclude_seen`` removes the user's earlier items (``full_histories`` when
    given, else the case history) from the candidates.
    """
    k_max = max(ks)
    ranked: list[list[str | None]] = []
    for start in tqdm(range(0, len(cases), batch_size), desc="evaluate", unit="batch", disable=not progress):
        batch = cases[start : start + batch_size]
        exclude = None
        if exclude_seen:
            exclude = [
                (full_histories or {}).get(c.user_id, set(c.history)) | set(c.history) for c in batch
            ]
        lists = recommender.recommend(
            [c.history for c in batch], k_max, exclude=exclude, users=[c.user_id for c in batch]
        )
        if len(lists) != len(batch):
            raise ValueError(f"recommender returned {len(lists)} lists for {len(batch)} histories")
        ranked.extend(list(items)[:k_max] for items in lists)
    metrics = ranking_metrics(ranked, [c.target for c in cases], ks)
    # A slot is invalid when the model marked it (None) or did not fill it at all
    # (a generator whose beams ran out): both are places where no item was recommended.
    n_slots = len(ranked) * k_max
    filled_valid = sum(x is not None for r in ranked for x in r)
    metrics["invalid_rate"] = float((n_slots - filled_valid) / max(n_slots, 1))
    return metrics, ranked


def model_settings(recommender: Recommender) -> dict[str, Any]:
    """What the model did with the inputs, as it reports it (``max_history`` it kept, beams, ranking).

    Recommenders describe themselves through an optional ``evaluation_settings()``
    method; a model without one is recorded by its class name only.
    """
    describe = getattr(recommender, "evaluation_settings", None)
    settings = dict(describe()) if callable(describe) else {}
    return {"class": type(recommender).__name__, **settings}


def evaluate(
    recommender: Recommender,
    dataset: Dataset,
    *,
    split: str = "test",
    ks: Sequence[int] = DEFAULT_KS,
    max_history: int = DEFAULT_MAX_HISTORY,
    exclude_seen: bool = False,
    n_users: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = True,
    beyond_accuracy: bool = True,
) -> dict[str, Any]:
    """Leave-one-out, full-ranking evaluation of ``recommender`` on ``dataset``.

    Args:
        split: ``"test"`` (last item, history = every earlier item) or
            ``"valid"`` (second-to-last item, history = the items before it).
        ks: cut-offs for Recall@K / NDCG@K (and the beyond-accuracy metrics).
        max_history: the history given to the recommender is the user's most
            recent ``max_history`` items before the target (20, as in TIGER/P5);
            a model may keep fewer (``settings.model`` records what it kept).
        exclude_seen: drop every item the user interacted with before the
            target (the whole history, not only the truncated part) from the
            candidates; off by default, as in the TIGER/LETTER protocol.
        n_users: evaluate a seeded random sample of this many users (stated in
            the output); ``None`` = every user.
        seed: seed of that sample.
        batch_size: histories per ``recommend`` call.
        progress: show a tqdm bar.
        beyond_accuracy: also report coverage@K, popularity bias and category
            diversity (see :mod:`semid.evaluation.beyond`; popularity is counted
            on the training part of the split).

    Returns:
        ``{"metrics": {...}, "settings": {...}, "n_users": int, "seconds": float}``.
    """
    loo = leave_one_out(dataset, max_history=max_history)
    cases = loo.cases(split)
    sample = None
    if n_users is not None and n_users < len(cases):
        cases = sample_cases(cases, n_users, seed)
        sample = {"n_users": n_users, "seed": seed}
    elif n_users is not None:
        logger.info("a sample of %d users was asked for; the split has %d, so every user is evaluated",
                    n_users, len(cases))
    full = None
    if exclude_seen:
        # Every item before the target counts as seen, not only the truncated history.
        cut = 1 if split == "test" else 2
        full = {
            u: set(s[:-cut]) for u, s in zip(dataset.sequences.user_ids, dataset.sequences.items)
        }
    started = time.perf_counter()
    metrics, ranked = evaluate_cases(
        recommender, cases, ks=ks, exclude_seen=exclude_seen, batch_size=batch_size,
        full_histories=full, progress=progress,
    )
    seconds = time.perf_counter() - started
    if beyond_accuracy:
        from .beyond import beyond_accuracy_metrics

        metrics.update(beyond_accuracy_metrics(ranked, dataset.items, loo.train_sequences, ks))
    return {
        "metrics": metrics,
        "n_users": len(cases),
        "seconds": round(seconds, 3),
        "settings": {
            **loo.settings(),
            "split": split,
            "ks": sorted(set(int(k) for k in ks)),
            "exclude_seen": exclude_seen,
            "beyond_accuracy": beyond_accuracy,
            # Every catalogue item is a candidate (no sampled candidate list); how the
            # model ranks them (scores or beam search) is in "model".
            "full_ranking": True,
            "model": model_settings(recommender),
            "n_items": len(dataset.items),
            "user_sample": sample,
            "dataset": dataset.name,
        },
    }

