"""A softmax over one code level at a time, for seq2seq models trained that way.

With the fixed layout of :mod:`semid.gen.decoding.tables` a decoder's output
softmax covers every code token of every level (and any user tokens). The code
token at decoder depth ``d`` can only come from level ``d``; GRID, cornac and the
fixed EdoardoBotta TIGER give each level its own output head for that reason. A
model whose config says ``tiger_softmax == "level"`` was trained with the
softmax restricted to the tokens of the target's level (EOS included when codes
have different lengths); it must be decoded the same way, or the untrained mass
on the other levels' tokens would enter every beam's score. The mask comes from
the model config alone:

- ``tiger_level_bounds``: model token id where each level starts, then the end of
  the last level (``list[int]``, length levels + 1);
- ``tiger_eos_separated``: codes have different lengths and end with EOS.
"""

from __future__ import annotations

import torch

from .tables import EOS_TOKEN_ID

__all__ = ["LEVEL_SOFTMAX", "block_depth", "level_mask", "restrict_to_level"]

#: The ``tiger_softmax`` value of a model trained with one softmax per level.
LEVEL_SOFTMAX = "level"


def level_mask(config, vocab_size: int) -> torch.Tensor | None:
    """Tokens each decoder depth may emit, ``bool (D, V)``; None for a whole-vocabulary softmax.

    Row ``d < levels`` allows level ``d``'s code tokens (and EOS when codes end with
    it); a last row for EOS-terminated codes allows EOS only.
    """
    if getattr(config, "tiger_softmax", "vocab") != LEVEL_SOFTMAX:
        return None
    bounds = list(config.tiger_level_bounds)
    eos = bool(getattr(config, "tiger_eos_separated", False))
    levels = len(bounds) - 1
    mask = torch.zeros(levels + int(eos), vocab_size, dtype=torch.bool)
    for depth in range(levels):
        mask[depth, bounds[depth] : bounds[depth + 1]] = True
    if eos:
        mask[:, EOS_TOKEN_ID] = True
    return mask


def restrict_to_level(logits: torch.Tensor, depth: torch.Tensor | int, mask: torch.Tensor | None) -> torch.Tensor:
    """``logits (..., V)`` with the tokens outside each position's level set to the dtype minimum.

    ``depth`` is an int (every row at the same depth) or an ``int64`` tensor shaped
    like ``logits.shape[:-1]``; depths past the mask's last row use the last row.
    A None ``mask`` (whole-vocabulary model) returns ``logits`` unchanged.
    """
    if mask is None:
        return logits
    mask = mask.to(logits.device)
    if isinstance(depth, int):
        allowed = mask[min(depth, mask.shape[0] - 1)]
    else:
        allowed = mask[depth.clamp(0, mask.shape[0] - 1)]
    return logits.masked_fill(~allowed, torch.finfo(logits.dtype).min)


def block_depth(block: torch.Tensor) -> torch.Tensor:
    """Depth of every decoder token inside its target block: ``int64 (R, T)``.

    ``block (R, T)`` numbers the target each decoder token belongs to (blocks are
    contiguous; -1 padding, whose depth is meaningless and unused).
    """
    positions = torch.arange(block.shape[1], device=block.device).expand_as(block)
    starts = torch.ones_like(block, dtype=torch.bool)
    starts[:, 1:] = block[:, 1:] != block[:, :-1]
    first = torch.where(starts, positions, torch.zeros_like(positions)).cummax(dim=1).values
    return positions - first
