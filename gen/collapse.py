"""Is a generator conditioning on the history? Checks that work for every model.

A generator whose decoder ignores its input still lowers its training loss (it
learns the code grammar and item popularity) while recommending nearly the same
items to every user. These checks show it for any :class:`semid.evaluation.Recommender`
(TIGER, LC-Rec, CF, the adapters to come):

- :func:`distinct_items` / :func:`collapse_floor`: distinct items across users'
  top-k lists (healthy TIGER runs on Beauty hold hundreds in 2,000 users'
  top-10 lists after 0.5M targets, collapsed ones 15-25);
- :func:`list_diversity`: that count plus the swap test (the overlap of a user's
  list with the list for another user's history; 1.0 means the history does not matter);
- :func:`token_table_nll`: what a unigram and a bigram table of the code tokens
  achieve per position, the bar a model's per-position NLL must clear.

Model-specific checks (encoder ablation, prompt ablation) live beside each
generator: :mod:`semid.gen.tiger.diagnostics`, :mod:`semid.gen.lcrec.diagnostics`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from semid.evaluation.split import EvalCase


__all__ = ["HEALTHY", "collapse_floor", "distinct_items", "list_diversity", "token_table_nll"]

#: Direction and level separating healthy from collapsed runs, per check.
HEALTHY = {
    "swap_overlap@10": ("below", 0.5),
    "zero_encoder_kl": ("above", 0.05),
    "encoder_cosine": ("below", 0.95),
    "swap_history_kl": ("above", 0.05),
}


def distinct_items(ranked: Sequence[Sequence[str | None]], k: int = 10) -> int:
    """Number of distinct (valid) items in the top-``k`` of all lists."""
    return len({item for row in ranked for item in list(row)[:k] if item is not None})


def collapse_floor(n_users: int, n_items: int, k: int = 10) -> int:
    """Distinct-item count below which lists are called collapsed.

    0.5% of the most the lists could hold (``min(k * n_users, n_items)``), at
    least ``k``. On Beauty with 2,000 users that is 60: well above the 15-25 of a
    decoder that ignores its input, well below the 181 of a healthy model after
    its first 0.26M targets (and the 500+ it holds later).
    """
    return max(k, int(0.005 * min(k * n_users, n_items)))


def list_diversity(
    recommender, cases: Sequence[EvalCase], *, k: int = 10, seed: int = 0, n_items: int | None = None
) -> dict[str, Any]:
    """Distinct items in the cases' top-``k`` lists, and the swap-test overlap.

    Works for any :class:`semid.evaluation.Recommender` (TIGER, LC-Rec, CF);
    ``n_items`` is the catalogue size (default: ``recommender.tokenizer``'s items).
    Swap test: each case is paired with another (a seeded derangement); the
    overlap is ``|top_k(own history) & top_k(other's history)| / k`` with the
    user id kept (so a user token, if any, stays), averaged over cases.
    """
    histories = [c.history for c in cases]
    users = [c.user_id for c in cases]
    own = recommender.recommend(histories, k, users=users)
    rng = np.random.default_rng(seed)
    n = len(cases)
    partner = (np.arange(n) + rng.integers(1, max(n, 2), size=n)) % max(n, 1) if n > 1 else np.zeros(n, int)
    swapped = recommender.recommend([histories[int(j)] for j in partner], k, users=users)
    overlap = [len(set(a[:k]) & set(b[:k])) / k for a, b in zip(own, swapped)]
    if n_items is None:
        n_items = len(recommender.tokenizer.item_ids)
    return {
        f"distinct@{k}": distinct_items(own, k),
        "collapse_floor": collapse_floor(n, n_items, k),
        "users": n,
        f"swap_overlap@{k}": round(float(np.mean(overlap)) if overlap else float("nan"), 4),
    }


def token_table_nll(
    tokens_of: Callable[[str], list[int]], train_targets: Sequence[str], cases: Sequence[EvalCase]
) -> dict[str, list[float]]:
    """NLL per position of a unigram and a bigram table of target tokens (``tokens_of(item)``).

    Tables are counted on ``train_targets`` (item ids, one per training target)
    with add-one smoothing over each position's observed token range; scored on
    the cases' targets. ``bigram`` conditions position p on the token at p - 1
    (position 0 on nothing, so it equals the unigram there).
    """
    length = max((len(tokens_of(item)) for item in set(train_targets) | {c.target for c in cases}), default=0)
    unigram = [Counter() for _ in range(length)]
    bigram = [Counter() for _ in range(length)]
    context = [Counter() for _ in range(length)]
    vocab = [set() for _ in range(length)]
    for item in train_targets:
        tokens = tokens_of(item)
        for p, tok in enumerate(tokens):
            unigram[p][tok] += 1
            vocab[p].add(tok)
            if p:
                bigram[p][(tokens[p - 1], tok)] += 1
                context[p][tokens[p - 1]] += 1
    n_train = [sum(c.values()) for c in unigram]
    uni_sum = np.zeros(length)
    bi_sum = np.zeros(length)
    n = np.zeros(length)
    for case in cases:
        tokens = tokens_of(case.target)
        for p, tok in enumerate(tokens):
            v = max(len(vocab[p]), 1)
            uni = (unigram[p][tok] + 1) / (n_train[p] + v)
            bi = uni if p == 0 else (bigram[p][(tokens[p - 1], tok)] + 1) / (context[p][tokens[p - 1]] + v)
            uni_sum[p] -= math.log(uni)
            bi_sum[p] -= math.log(bi)
            n[p] += 1
    safe = np.maximum(n, 1)
    return {
        "unigram": [round(float(x), 4) for x in uni_sum / safe],
        "bigram": [round(float(x), 4) for x in bi_sum / safe],
    }
