"""Choosing a decoding method: plain constrained beam search or D3.

``decoding="beam"``: the model's summed log-probabilities, no length normalization.

``decoding="d3"`` (Bao et al. 2024, "Decoding Matters: Addressing Amplification Bias
and Homogeneity Issue for LLM-based Recommendation"):

- no length normalization (the amplification bias it causes is D3's first finding);
- ghost tokens debiased: a step with a single allowed continuation is forced and
  contributes nothing to the score or the length;
- a text-free assistant (any :class:`ItemScorer`, e.g. :class:`PopularityScorer` or
  a SASRec) blended in: ``(1 - alpha) * model score + alpha * assistant score``,
  the assistant's token scores aggregated through the trie. The paper writes the
  blend as ``a * S + (1 - a) * S_TF``; here ``alpha`` weighs the *assistant*, so
  ``alpha = 0`` is exactly the model alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from semid.errors import ParameterError

from .assistant import ItemScorer
from .beam import Stepper, constrained_beam_search
from .tables import TrieTables

__all__ = ["DECODING_METHODS", "DecodingConfig", "decode"]

DECODING_METHODS = ("beam", "d3")


@dataclass(frozen=True)
class DecodingConfig:
    """Parameters of one decoding method.

    Attributes:
        decoding: ``"beam"`` or ``"d3"``.
        num_beams: beams per user (TIGER uses 20); at least ``k``.
        length_normalization: divide scores by the number of scored tokens
            (off by default for both methods, as D3 recommends).
        alpha: D3 assistant weight in ``[0, 1]``; must be 0 for ``"beam"``.
        debias_ghost_tokens: leave forced steps out of scores; default True for
            ``"d3"``, False for ``"beam"``.
    """

    decoding: str = "beam"
    num_beams: int = 20
    length_normalization: bool = False
    alpha: float = 0.0
    debias_ghost_tokens: bool | None = None

    def __post_init__(self) -> None:
        if self.decoding not in DECODING_METHODS:
            raise ParameterError(
                f"unknown decoding {self.decoding!r}; valid methods: {', '.join(DECODING_METHODS)}"
            )
        if int(self.num_beams) < 1:
            raise ParameterError(f"num_beams must be >= 1, got {self.num_beams}")
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise ParameterError(f"alpha (assistant weight) must be in [0, 1], got {self.alpha}")
        if self.decoding == "beam" and self.alpha != 0.0:
            raise ParameterError(f"alpha={self.alpha} needs decoding='d3' (beam search has no assistant)")

    @property
    def ghost_debiased(self) -> bool:
        if self.debias_ghost_tokens is None:
            return self.decoding == "d3"
        return bool(self.debias_ghost_tokens)


def decode(
    stepper: Stepper,
    tables: TrieTables,
    batch_inputs: Any,
    *,
    k: int,
    config: DecodingConfig | None = None,
    histories: Sequence[Sequence[str]] | None = None,
    assistant: ItemScorer | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` items per user with the method in ``config``.

    Args:
        stepper: the model (e.g. :class:`T5Stepper`).
        tables: the index's :class:`TrieTables`.
        batch_inputs: the model inputs of ``B`` users (passed to ``stepper.start``).
        k: items per user.
        config: decoding method and parameters (default: 20-beam search).
        histories: the ``B`` users' histories (item ids, oldest first); needed when
            D3 uses an assistant (``alpha > 0``).
        assistant: D3's text-free item scorer (``histories -> (B, n_items)`` logits).

    Returns:
        ``(items int64 (B, k), scores float32 (B, k))`` as
        :func:`constrained_beam_search` (``-1`` / ``-inf`` padding).
    """
    config = config or DecodingConfig()
    item_scores = None
    if config.decoding == "d3" and config.alpha > 0:
        if assistant is None or histories is None:
            raise ParameterError("decoding='d3' with alpha > 0 needs an assistant scorer and the users' histories")
        item_scores = assistant(histories)
        if not isinstance(item_scores, torch.Tensor):
            raise ParameterError(f"the assistant must return a torch.Tensor, got {type(item_scores).__name__}")
    return constrained_beam_search(
        stepper,
        tables,
        batch_inputs,
        num_beams=config.num_beams,
        k=k,
        length_normalization=config.length_normalization,
        assistant=item_scores,
        alpha=config.alpha,
        debias_ghost_tokens=config.ghost_debiased,
    )
