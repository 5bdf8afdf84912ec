"""Trie-constrained beam search, batched over users x beams.

The model is reached only through a :class:`Stepper`; the trie only through
:class:`TrieTables`. Each step, for every live beam, the allowed next tokens and
their child nodes come from one gather in the trie's edge table, the model's
log-probabilities of exactly those tokens from one more gather, and the next beams
from one ``topk`` per user. No Python loop runs over users, beams or items, and the
work per step depends on the beam count and the trie's branching, not on the
number of items.

Scores. A beam's score is the sum of the model's log-probabilities (a softmax over
the whole model vocabulary, as in teacher forcing) of its tokens, EOS included when
the tables use it; no length normalization unless asked. Options (used by D3, see
:mod:`semid.gen.decoding.decode`):

- ``debias_ghost_tokens``: a step where a beam has exactly one allowed continuation
  is forced; its model log-probability is then left out of the score (the token
  carries no choice, and D3 shows such "ghost" tokens distort item scores) and out
  of the length used for normalization.
- ``assistant`` with weight ``alpha``: ranking key
  ``(1 - alpha) * model_score + alpha * log(assistant mass under the prefix)``.

A finished beam is one whose last token completed a code: EOS at a code end
(tables with ``uses_eos``), or the last token of a leaf (prefix-free tables).
Every path is finished at most once, so the ``k`` returned items are distinct.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

from semid.errors import ParameterError

from .assistant import assistant_prefix_sums, range_log_mass
from .tables import TrieTables

__all__ = ["Stepper", "constrained_beam_search"]


@runtime_checkable
class Stepper(Protocol):
    """A generator seen one decoding step at a time.

    Rows are ``user * num_beams + beam``. ``start`` runs everything that does not
    depend on the generated tokens (e.g. the encoder, or an LLM's prompt) and returns
    the log-probabilities of the first generated token; ``step`` appends one token per
    row after reordering the rows' caches by ``parents``.
    """

    def start(self, batch_inputs: Any, num_beams: int) -> tuple[torch.Tensor, Any]:
        """Returns ``(log_probs float (B * num_beams, V), state)``; all beams of a user equal."""
        ...

    def step(self, state: Any, tokens: torch.Tensor, parents: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Row ``r`` continues row ``parents[r]`` with ``tokens[r]``.

        Args:
            tokens: ``int64 (B * num_beams,)`` model token appended to each row.
            parents: ``int64 (B * num_beams,)`` row (of the previous step) that each
                row extends; always a row of the same user.

        Returns:
            ``(log_probs float (B * num_beams, V), state)`` for the next token.
        """
        ...


def constrained_beam_search(
    stepper: Stepper,
    tables: TrieTables,
    batch_inputs: Any,
    *,
    num_beams: int,
    k: int,
    length_normalization: bool = False,
    assistant: torch.Tensor | None = None,
    alpha: float = 0.0,
    debias_ghost_tokens: bool = False,
    static_shapes: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` distinct valid items per user under the trie.

    Args:
        stepper: the model (see :class:`Stepper`, e.g. :class:`T5Stepper`).
        tables: the index's :class:`TrieTables` (moved to the model's device here).
        batch_inputs: passed unchanged to ``stepper.start``.
        num_beams: beams per user; at least ``k``.
        k: items to return per user.
        length_normalization: rank by score divided by the number of scored tokens.
        assistant: ``float (B, n_items)`` assistant item logits (tokenizer item order)
            for D3, or None.
        alpha: weight of the assistant in ``[0, 1]`` (0: model only).
        debias_ghost_tokens: leave forced single-choice steps out of the score.
        static_shapes: pad every step's candidates to the level's vocabulary size
            and never stop early, so each step's tensor shapes depend only on the
            index's vocabulary and the loop reads nothing back from the device
            (accelerators, compiled graphs). Same result as the default adaptive
            width, which is cheaper on a CPU.
        progress: called with the step number after each step (e.g. a tqdm update).

    Returns:
        ``(items, scores)``: ``int64 (B, k)`` item positions (tokenizer row order),
        best first, ``-1`` where fewer than ``k`` items were found (only when the
        catalogue, or what the beams reached, is smaller than ``k``); ``float32
        (B, k)`` their ranking keys, ``-inf`` at padding.

    Raises:
        ParameterError: invalid ``num_beams``/``k``/``alpha``, an assistant of the
            wrong shape, or a model vocabulary too small for the tables.
    """
    _check_options(num_beams, k, alpha)
    log_probs, state = stepper.start(batch_inputs, num_beams)
    rows, vocab_size = log_probs.shape
    if rows % num_beams:
        raise ParameterError(f"stepper returned {rows} rows, not a multiple of num_beams={num_beams}")
    if vocab_size < tables.min_vocab_size:
        raise ParameterError(
            f"the model scores {vocab_size} tokens but the index needs model token ids up to "
            f"{tables.min_vocab_size - 1}; was the model built for this index?"
        )
    batch, device = rows // num_beams, log_probs.device
    tables = tables.to(device)
    prefix_sums = None
    if assistant is not None and alpha > 0:
        if assistant.shape[0] != batch:
            raise ParameterError(f"assistant scores have {assistant.shape[0]} rows for {batch} users")
        prefix_sums = assistant_prefix_sums(tables, assistant.to(device))

    neg_inf = torch.tensor(-math.inf, device=device)
    # The first step expands only the root (all beams of a user are equal until then);
    # afterwards node/score/length are (B, num_beams), dead beams scored -inf.
    node = torch.zeros(batch, 1, dtype=torch.long, device=device)
    score = torch.zeros(batch, 1, device=device)
    length = torch.zeros(batch, 1, device=device)
    pool_key = torch.full((batch, k), -math.inf, device=device)
    pool_item = torch.full((batch, k), -1, dtype=torch.long, device=device)
    user_row = torch.arange(batch, device=device).unsqueeze(1) * num_beams

    for depth in range(tables.max_steps):
        alive = score > -math.inf
        width = tables.level_width(depth) if static_shapes else None
        tok, child = tables.allowed(node, alive, width=width)  # (B, N, W): W = widest live node or level size
        if tables.uses_eos:
            eos = torch.where(tables.eos_allowed[node], tables.eos_token_id, -1)
            tok = torch.cat([tok, eos.unsqueeze(-1)], dim=-1)
            child = torch.cat([child, torch.full_like(eos, -1).unsqueeze(-1)], dim=-1)
        valid = (tok >= 0) & alive.unsqueeze(-1)
        beam_lp = log_probs.view(batch, num_beams, vocab_size)[:, : node.shape[1]]
        step_lp = beam_lp.gather(2, tok.clamp(min=0)).float()
        counted = torch.ones_like(score)
        if debias_ghost_tokens:
            ghost = valid.sum(-1) == 1
            step_lp = torch.where(ghost.unsqueeze(-1), torch.zeros_like(step_lp), step_lp)
            counted = (~ghost).float()
        cand_score = torch.where(valid, score.unsqueeze(-1) + step_lp, neg_inf)
        cand_length = (length + counted).unsqueeze(-1).expand_as(cand_score)
        key = cand_score / cand_length.clamp(min=1) if length_normalization else cand_score

        if tables.uses_eos:
            finishes = valid.clone()
            finishes[..., :-1] = False
            item = torch.full_like(tok, -1)
            item[..., -1] = tables.terminal_item[node]
        else:
            safe_child = child.clamp(min=0)
            finishes = valid & (tables.n_children[safe_child] == 0)
            item = torch.where(finishes, tables.terminal_item[safe_child], -1)
        if prefix_sums is not None:
            key = (1.0 - alpha) * key + alpha * _candidate_log_mass(tables, prefix_sums, node, child, item)
        key = torch.where(valid, key, neg_inf)

        pool_key, pool_item = _merge_finished(pool_key, pool_item, key, item, finishes, k)
        if depth == tables.max_steps - 1:
            break
        cont_key = torch.where(valid & ~finishes, key, neg_inf).view(batch, -1)
        top_key, pick = cont_key.topk(min(num_beams, cont_key.shape[1]), dim=1)
        pick, top_key = _pad_columns(pick, top_key, num_beams)
        alive = top_key > -math.inf
        if not static_shapes and (
            not bool(alive.any()) or _cannot_improve(top_key, pool_key, length_normalization)
        ):
            break
        width = tok.shape[-1]
        score = torch.where(alive, cand_score.view(batch, -1).gather(1, pick), neg_inf)
        length = cand_length.reshape(batch, -1).gather(1, pick)
        node = torch.where(alive, child.view(batch, -1).gather(1, pick), 0)
        tokens = torch.where(alive, tok.view(batch, -1).gather(1, pick), tables.eos_token_id)
        parents = (user_row + torch.div(pick, width, rounding_mode="floor")).view(-1)
        log_probs, state = stepper.step(state, tokens.view(-1), parents)
        if progress is not None:
            progress(depth + 1)
    return pool_item, pool_key


def _check_options(num_beams: int, k: int, alpha: float) -> None:
    if int(k) < 1:
        raise ParameterError(f"k must be >= 1, got {k}")
    if int(num_beams) < int(k):
        raise ParameterError(f"num_beams must be >= k, got num_beams={num_beams}, k={k}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ParameterError(f"alpha (assistant weight) must be in [0, 1], got {alpha}")


def _candidate_log_mass(
    tables: TrieTables, prefix_sums: torch.Tensor, node: torch.Tensor, child: torch.Tensor, item: torch.Tensor
) -> torch.Tensor:
    """Assistant log mass under each candidate: the child's subtree, or the one item EOS closes."""
    safe_child = child.clamp(min=0)
    lo, hi = tables.node_lo[safe_child], tables.node_hi[safe_child]
    if tables.uses_eos:
        rank = tables.item_rank[tables.terminal_item[node].clamp(min=0)]
        lo = lo.clone()
        hi = hi.clone()
        lo[..., -1] = rank
        hi[..., -1] = rank + 1
    return range_log_mass(prefix_sums, lo, hi)


def _merge_finished(
    pool_key: torch.Tensor,
    pool_item: torch.Tensor,
    key: torch.Tensor,
    item: torch.Tensor,
    finishes: torch.Tensor,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the ``k`` best of the finished pool and this step's finishing candidates."""
    batch = pool_key.shape[0]
    new_key = torch.where(finishes, key, torch.full_like(key, -math.inf)).view(batch, -1)
    all_key = torch.cat([pool_key, new_key], dim=1)
    all_item = torch.cat([pool_item, item.view(batch, -1)], dim=1)
    top_key, idx = all_key.topk(k, dim=1)
    top_item = all_item.gather(1, idx)
    return top_key, torch.where(top_key > -math.inf, top_item, torch.full_like(top_item, -1))


def _pad_columns(pick: torch.Tensor, top_key: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad ``(B, m)`` selections to ``(B, width)`` with dead beams (when fewer candidates exist)."""
    missing = width - pick.shape[1]
    if missing <= 0:
        return pick, top_key
    pad_pick = torch.zeros(pick.shape[0], missing, dtype=pick.dtype, device=pick.device)
    pad_key = torch.full((pick.shape[0], missing), -math.inf, device=pick.device)
    return torch.cat([pick, pad_pick], 1), torch.cat([top_key, pad_key], 1)


def _cannot_improve(beam_key: torch.Tensor, pool_key: torch.Tensor, length_normalization: bool) -> bool:
    """True when no live beam can still enter any user's top ``k``.

    Keys never increase along a path (log-probabilities and log masses are <= 0),
    so a beam whose key is already below a full pool's worst cannot enter it.
    With length normalization keys can rise, so the search runs to the end.
    """
    if length_normalization:
        return False
    return bool((beam_key.max(dim=1).values < pool_key[:, -1]).all())
