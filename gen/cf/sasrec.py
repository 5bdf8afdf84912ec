"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the item sequence.

The network: item embeddings (scaled by sqrt(d)) plus learned positional
embeddings, dropout, ``n_blocks`` pre-norm Transformer blocks with a causal mask
(position t sees items <= t), a final LayerNorm. The hidden state at position t
scores every item by a dot product with the (shared) item embedding table.

Losses:

- ``"ce"`` (default): softmax cross-entropy over *all* items at every position.
  Reproductions show it beats the paper's sampled BCE by a wide margin on Beauty
  (ANCHORS.md section 1).
- ``"bce"``: the paper's loss, binary cross-entropy on the positive and one
  uniformly sampled negative (never equal to the positive) per position.

Training inputs come from the training part of the leave-one-out split: for a
training sequence ``s`` the model reads ``s[:-1]`` and predicts ``s[1:]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from semid.errors import ParameterError
from semid.params import above, at_least, in_range
from semid.settings import Settings, setting

from .data import CFData

__all__ = ["SASRec", "SASRecConfig"]


@dataclass
class SASRecConfig(Settings):
    """Hyper-parameters of :class:`SASRec` (defaults: the compact Beauty model)."""

    owner = "sasrec"

    hidden: int = setting(64, "embedding width", check=at_least(1))
    n_blocks: int = setting(2, "transformer blocks", check=at_least(1))
    n_heads: int = setting(1, "attention heads", check=at_least(1))
    max_len: int = setting(50, "most recent items per sequence", check=at_least(1))
    dropout: float = setting(0.5, "dropout", check=in_range(0.0, 0.99))
    loss: str = setting("ce", "full softmax ('ce') or one sampled negative ('bce')", choices=("bce", "ce"))
    lr: float = setting(1e-3, "Adam learning rate", check=above(0.0))
    weight_decay: float = setting(0.0, "Adam weight decay", check=at_least(0.0))
    batch_size: int = setting(128, "sequences per step", check=at_least(1))

    def check_together(self) -> None:
        if self.hidden % self.n_heads:
            raise ParameterError(f"sasrec: hidden ({self.hidden}) must be divisible by n_heads ({self.n_heads})")


class SASRec(nn.Module):
    """SASRec over ``n_items`` items (model indexes 1..n_items, 0 = padding)."""

    name = "sasrec"
    config_class = SASRecConfig

    def __init__(self, n_items: int, n_users: int, config: SASRecConfig):
        super().__init__()
        del n_users  # sequential model: users are represented by their histories
        self.config = config
        self.n_items = n_items
        self.item_emb = nn.Embedding(n_items + 1, config.hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(config.max_len, config.hidden)
        self.emb_dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            d_model=config.hidden,
            nhead=config.n_heads,
            dim_feedforward=config.hidden,  # as in the paper: a d -> d -> d point-wise FFN
            dropout=config.dropout,
            activation="relu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, num_layers=config.n_blocks, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(config.hidden)
        causal = torch.triu(torch.ones(config.max_len, config.max_len, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal_mask", causal, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.item_emb.weight, std=self.config.hidden ** -0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        nn.init.normal_(self.pos_emb.weight, std=0.02)

    # -- network ------------------------------------------------------------------
    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """Hidden states ``float32 (B, L', d)`` of left-padded item indexes ``int64 (B, L)``, ``L <= max_len``.

        ``L' <= L``: leading columns that are padding in every row are dropped, so
        the last column always is the most recent item.
        """
        # Drop leading columns that are padding in every row: with the mask below the
        # result is identical, and most Beauty sequences are far shorter than max_len.
        real = (seq != 0).any(0).nonzero()
        if len(real):
            seq = seq[:, int(real[0]):]
        length = seq.shape[1]
        # Positions count back from the end, as in a window left-padded to max_len,
        # so trimming does not change which position embedding an item gets.
        positions = torch.arange(self.config.max_len - length, self.config.max_len, device=seq.device)
        x = self.item_emb(seq) * math.sqrt(self.config.hidden) + self.pos_emb(positions)[None]
        x = self.emb_dropout(x)
        pad = seq == 0
        x = x * (~pad).unsqueeze(-1)
        # A position sees earlier real items and itself. Letting padded positions see
        # themselves keeps every softmax row non-empty (no NaN leaking into real rows);
        # their outputs are never used.
        eye = torch.eye(length, dtype=torch.bool, device=seq.device)
        mask = self.causal_mask[:length, :length][None] | (pad[:, None, :] & ~eye[None])
        mask = mask.repeat_interleave(self.config.n_heads, dim=0)  # (B * heads, L, L)
        x = self.blocks(x, mask=mask)
        return self.final_norm(x)

    def item_vectors(self) -> torch.Tensor:
        """Item embedding table without padding: ``float32 (n_items, d)``, row i = dataset row i."""
        return self.item_emb.weight[1:]

    # -- training -----------------------------------------------------------------
    def training_batches(self, data: CFData, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Yield ``int64 (B, max_len + 1)`` left-padded windows of training sequences, shuffled.

        Sequences longer than ``max_len + 1`` contribute their most recent window only,
        as in the reference implementation.
        """
        width = self.config.max_len + 1
        usable = [s[-width:] for s in data.train_sequences if len(s) >= 2]
        matrix = np.zeros((len(usable), width), dtype=np.int64)
        for row, seq in enumerate(usable):
            matrix[row, width - len(seq):] = seq
        tensor = torch.from_numpy(matrix)
        order = torch.randperm(len(usable), generator=generator)
        for start in range(0, len(usable), self.config.batch_size):
            yield tensor[order[start:start + self.config.batch_size]]

    def loss(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Mean loss over the real (non-padding) positions of a training batch."""
        inputs, targets = batch[:, :-1], batch[:, 1:]
        hidden = self.encode(inputs)
        inputs, targets = inputs[:, -hidden.shape[1]:], targets[:, -hidden.shape[1]:]
        valid = (inputs != 0) & (targets != 0)
        h = hidden[valid]  # (N, d): only positions with an input and a target
        target = targets[valid]
        if self.config.loss == "ce":
            logits = h @ self.item_emb.weight.T  # (N, n_items + 1)
            logits[:, 0] = float("-inf")  # padding is never a prediction
            return F.cross_entropy(logits, target)
        # BCE with one negative per position, drawn uniformly among the other items.
        negative = torch.randint(1, self.n_items, target.shape, generator=generator)
        negative = negative + (negative >= target).long()
        pos_logit = (h * self.item_emb(target)).sum(-1)
        neg_logit = (h * self.item_emb(negative)).sum(-1)
        return F.binary_cross_entropy_with_logits(pos_logit, torch.ones_like(pos_logit)) + \
            F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit))

    # -- inference ----------------------------------------------------------------
    @torch.no_grad()
    def score(self, histories: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        """Scores ``float32 (B, n_items)`` of every item (column i = dataset row i).

        Args:
            histories: ``int64 (B, max_len)`` left-padded item indexes.
            users: ignored (a sequential model).
        """
        del users
        hidden = self.encode(histories)[:, -1]  # (B, d)
        return hidden @ self.item_vectors().T
