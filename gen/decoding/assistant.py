"""Text-free assistants for D3 decoding and their aggregation through the trie.

D3 (Bao et al. 2024, "Decoding Matters") blends the generator's token scores with
those of a text-free assistant, an ordinary item scorer. The assistant's item
probabilities ``p_TF(i)`` become token scores through the trie:

    L_TF(h_t | h_<t) = log( sum_{i under h_<t h_t} p_TF(i) / sum_{i under h_<t} p_TF(i) )

Summed over a path these telescope to ``log`` of the assistant's probability mass
under the current prefix, so a beam only needs the mass of its node. Items under
any node form a contiguous range in depth-first code order (``TrieTables.node_lo``
/ ``node_hi``), so that mass is a difference of two prefix sums: the cost per step
is a gather, independent of the catalogue.

An *item scorer* is any callable ``histories -> FloatTensor (B, n_items)``: for
each history (a list of item ids, oldest first) one score per item, in the
tokenizer's item order. Scores are treated as logits: ``p_TF = softmax(scores)``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch

from semid.errors import ParameterError, UnknownItemError

from .tables import TrieTables

__all__ = [
    "ItemScorer",
    "PopularityScorer",
    "assistant_prefix_sums",
    "assistant_token_scores",
    "node_log_mass",
    "range_log_mass",
]

# Masses below this are treated as this (log stays finite, such prefixes rank last).
_TINY = 1e-300


@runtime_checkable
class ItemScorer(Protocol):
    """Scores every item for each history: ``(B histories) -> FloatTensor (B, n_items)``."""

    def __call__(self, histories: Sequence[Sequence[str]]) -> torch.Tensor: ...


class PopularityScorer:
    """Item popularity in training sequences, as an assistant: ``log(count + smoothing)``.

    The same scores for every history (the simplest text-free assistant; any
    sequential recommender exposing the :class:`ItemScorer` call works as well).

    Args:
        item_ids: the index's item ids, in tokenizer row order.
        sequences: *training* sequences only (item ids, oldest first).
        smoothing: added to every count so unseen items keep a small probability.
    """

    def __init__(self, item_ids: Sequence[str], sequences: Sequence[Sequence[str]], *, smoothing: float = 1.0):
        if not smoothing > 0:
            raise ParameterError(f"PopularityScorer smoothing must be > 0, got {smoothing!r}")
        position = {item: i for i, item in enumerate(item_ids)}
        counts = torch.zeros(len(item_ids), dtype=torch.float64)
        counter = Counter(item for seq in sequences for item in seq)
        for item, count in counter.items():
            if item not in position:
                raise UnknownItemError(f"training sequences name item {item!r}, which the index does not hold")
            counts[position[item]] = count
        self.item_ids = list(item_ids)
        self.smoothing = float(smoothing)
        self.counts_ = counts
        self.scores_ = torch.log(counts + self.smoothing).to(torch.float32)

    def __call__(self, histories: Sequence[Sequence[str]]) -> torch.Tensor:
        """``float32 (len(histories), n_items)`` log-popularity, the same row for everyone."""
        return self.scores_.unsqueeze(0).expand(len(histories), -1).clone()


def assistant_prefix_sums(tables: TrieTables, item_scores: torch.Tensor) -> torch.Tensor:
    """Prefix sums of assistant probabilities in depth-first item order.

    Args:
        item_scores: ``float (B, n_items)`` assistant logits in tokenizer item order.

    Returns:
        ``float64 (B, n_items + 1)``: ``out[b, r]`` = probability mass of the ``r``
        first items in depth-first order (float64, because masses are differences
        of these sums and small subtrees would otherwise cancel out).
    """
    if item_scores.dim() != 2 or item_scores.shape[1] != tables.n_items:
        raise ParameterError(
            f"assistant scores must have shape (batch, {tables.n_items}), got {tuple(item_scores.shape)}"
        )
    if not bool(torch.isfinite(item_scores).all()):
        raise ParameterError("assistant scores contain NaN or infinite values")
    probs = torch.softmax(item_scores.to(torch.float64), dim=1)
    ordered = torch.empty_like(probs)
    ordered[:, tables.item_rank.to(probs.device)] = probs
    out = torch.zeros(probs.shape[0], probs.shape[1] + 1, dtype=torch.float64, device=probs.device)
    torch.cumsum(ordered, dim=1, out=out[:, 1:])
    return out


def range_log_mass(prefix_sums: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """``log`` of the probability of items with depth-first rank in ``[lo, hi)``.

    Args:
        prefix_sums: ``float64 (B, n_items + 1)`` from :func:`assistant_prefix_sums`.
        lo, hi: ``int64 (B, ...)`` rank bounds (any trailing shape).

    Returns:
        ``float32 (B, ...)``.
    """
    batch = prefix_sums.shape[0]
    flat_lo = lo.reshape(batch, -1).clamp(0, prefix_sums.shape[1] - 1)
    flat_hi = hi.reshape(batch, -1).clamp(0, prefix_sums.shape[1] - 1)
    mass = prefix_sums.gather(1, flat_hi) - prefix_sums.gather(1, flat_lo)
    return torch.log(mass.clamp(min=_TINY)).to(torch.float32).reshape(lo.shape)


def node_log_mass(tables: TrieTables, prefix_sums: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
    """``log`` of the assistant mass under each node: ``float32`` shaped like ``nodes (B, ...)``."""
    return range_log_mass(prefix_sums, tables.node_lo[nodes], tables.node_hi[nodes])


def assistant_token_scores(
    tables: TrieTables, prefix_sums: torch.Tensor, nodes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """D3's ``L_TF`` of every allowed next token of ``nodes``.

    Args:
        prefix_sums: ``float64 (B, n_items + 1)``.
        nodes: ``int64 (B, N)`` node ids.

    Returns:
        ``(tokens, scores)``: ``tokens int64 (B, N, width)`` allowed model tokens
        (``-1`` padded, as :meth:`TrieTables.allowed`) and ``scores float32
        (B, N, width)`` their log conditional assistant probability (``-inf`` at
        padding). EOS is not included: where allowed its score is the log mass of
        the item ending at the node minus the node's log mass.
    """
    tokens, children = tables.allowed(nodes)
    child_mass = node_log_mass(tables, prefix_sums, children.clamp(min=0))
    parent_mass = node_log_mass(tables, prefix_sums, nodes)
    scores = child_mass - parent_mass.unsqueeze(-1)
    return tokens, torch.where(tokens >= 0, scores, torch.full_like(scores, -math.inf))
