"""The TIGER network: a transformers T5 whose encoder can be block-causal over items.

:class:`TigerT5` is a ``T5ForConditionalGeneration`` built from a config (no
download). With ``encoder_attention='block_causal'`` its encoder lets every
token see the user token, the tokens of its own item and of *earlier* items
only. The rule is derived from the input ids themselves
(:func:`encoder_segments`), so any caller that passes the usual 2-d padding
mask - ``generate``, the trie-constrained beam search of
:mod:`semid.gen.decoding` - gets the same conditional the model was trained
with, without knowing about it.

:func:`sequence_loss` trains on a batch made by :mod:`semid.gen.tiger.batches`:
one encoder row per history window and, in the same decoder row, one block of
tokens per next-item target. Three 4-d masks make this exactly equivalent to
running each target as its own example:

- encoder self-attention: segment(key) <= segment(query) (block-causal), so the
  state of history item j does not depend on later items;
- decoder self-attention: block-diagonal and causal, so a target's tokens never
  see another target (T5's decoder position bias is relative, hence identical
  inside each block to a standalone decoder);
- cross-attention: the block of a target with ``h`` history items sees only
  encoder segments ``0..h`` (user token and items before the target).
"""

from __future__ import annotations

import torch
from transformers import T5Config, T5ForConditionalGeneration
from transformers.models.t5.modeling_t5 import T5Stack

from ..decoding.level_softmax import block_depth, level_mask, restrict_to_level
from .config import TigerConfig
from .layout import EOS_ID, PAD_ID, TokenLayout

__all__ = [
    "TigerEncoder",
    "TigerT5",
    "build_model",
    "encoder_mask",
    "encoder_segments",
    "sequence_loss",
    "t5_config",
]


def encoder_segments(input_ids: torch.Tensor, config: T5Config) -> torch.Tensor:
    """Segment of every encoder token: ``int64 (B, S)``.

    ``-1`` padding, ``0`` the user token, ``k >= 1`` a token of the k-th item of
    the row (counted from the first non-padding item token, so left or right
    padding both work).
    """
    is_pad = input_ids == PAD_ID
    is_user = input_ids >= config.tiger_user_offset
    is_item = ~is_pad & ~is_user
    if config.tiger_eos_separated:
        is_eos = (input_ids == EOS_ID).long()
        segments = torch.cumsum(is_eos, dim=1) - is_eos + 1
    else:
        rank = torch.cumsum(is_item.long(), dim=1) - 1
        segments = torch.div(rank, config.tiger_code_length, rounding_mode="floor") + 1
    segments = torch.where(is_user, torch.zeros_like(segments), segments)
    return torch.where(is_pad, torch.full_like(segments, -1), segments)


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean ``(B, Q, K)`` -> additive float mask ``(B, 1, Q, K)``; each row keeps its diagonal
    (or first key) so no softmax row is empty."""
    if allowed.shape[-2] == allowed.shape[-1]:
        allowed = allowed | torch.eye(allowed.shape[-1], dtype=torch.bool, device=allowed.device)
    else:
        empty = ~allowed.any(dim=-1, keepdim=True)
        first = torch.zeros_like(allowed)
        first[..., 0] = True
        allowed = allowed | (empty & first)
    zero = torch.zeros((), dtype=dtype, device=allowed.device)
    blocked = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=allowed.device)
    return torch.where(allowed, zero, blocked)[:, None]


def encoder_mask(
    segments: torch.Tensor, *, block_causal: bool | torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Encoder self-attention mask ``(B, 1, S, S)`` from :func:`encoder_segments`.

    ``block_causal``: one flag for the batch, or a ``bool (B,)`` tensor, one per row.
    """
    rows = torch.as_tensor(block_causal, dtype=torch.bool, device=segments.device).expand(segments.shape[0])
    keys = segments[:, None, :]
    allowed = (keys >= 0) & ((keys <= segments[:, :, None]) | ~rows[:, None, None])
    return _additive(allowed, dtype)


class TigerEncoder(T5Stack):
    """T5 encoder stack that turns a 2-d padding mask into the block-causal item mask."""

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs):
        block_causal = getattr(self.config, "tiger_encoder_attention", "full") == "block_causal"
        if block_causal and input_ids is not None and (attention_mask is None or attention_mask.dim() == 2):
            ids = input_ids if attention_mask is None else input_ids.masked_fill(attention_mask == 0, PAD_ID)
            segments = encoder_segments(ids, self.config)
            attention_mask = encoder_mask(segments, block_causal=True, dtype=self.embed_tokens.weight.dtype)
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)


class TigerT5(T5ForConditionalGeneration):
    """``T5ForConditionalGeneration`` with a :class:`TigerEncoder` (same weight names)."""

    def __init__(self, config: T5Config):
        super().__init__(config)
        # The encoder T5ForConditionalGeneration built is initialised the T5 way
        # (attention q ~ N(0, (d_model d_kv)^-1/2), feed-forward ~ N(0, d^-1/2)).
        # A T5Stack created after that is not: under transformers 5 its linear
        # layers get the generic N(0, initializer_factor = 1) init, 10-90x too
        # large, which saturates every encoder attention and makes the decoder
        # learn to ignore the encoder (the "TIGER does not learn" defect, issue
        # 10). So the block-causal encoder takes over the T5-initialised weights.
        t5_encoder = self.encoder
        self.encoder = TigerEncoder(t5_encoder.config)
        self.encoder.load_state_dict(t5_encoder.state_dict())
        self.encoder.set_input_embeddings(self.shared)


def t5_config(config: TigerConfig, layout: TokenLayout) -> T5Config:
    """The transformers config of a TIGER model for ``layout``."""
    return T5Config(
        vocab_size=layout.vocab_size,
        d_model=config.d_model,
        d_kv=config.d_kv,
        d_ff=config.d_ff,
        num_layers=config.num_layers,
        num_decoder_layers=config.num_decoder_layers,
        num_heads=config.num_heads,
        dropout_rate=config.dropout,
        feed_forward_proj="relu",
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=PAD_ID,
        tie_word_embeddings=True,
        tiger_encoder_attention=config.attention,
        tiger_softmax=config.softmax,
        **layout.mask_settings(),
    )


def build_model(config: TigerConfig, layout: TokenLayout) -> TigerT5:
    """A freshly initialised TIGER model; weights depend only on ``config.seed``."""
    torch.manual_seed(config.seed)
    model = TigerT5(t5_config(config, layout))
    model.generation_config.do_sample = False  # pitfall 6: never inherit sampling defaults
    return model


def sequence_loss(model: TigerT5, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean token cross-entropy of a batch from :func:`semid.gen.tiger.batches.collate`.

    Batch tensors (all ``int64``): ``encoder_ids (R, S)``, ``decoder_ids (R, T)``,
    ``labels (R, T)`` (-100 = ignore), ``decoder_block (R, T)`` (target number of
    each decoder token, -1 padding), ``decoder_history (R, T)`` (history items the
    token's target may see); optional ``encoder_block_causal`` (``bool (R,)``,
    per-row encoder attention; default: the model's). A model built with
    ``softmax="level"`` scores each target token against its own code level only.
    """
    dtype = model.shared.weight.dtype
    encoder_ids = batch["encoder_ids"]
    segments = encoder_segments(encoder_ids, model.config)
    block_causal = batch.get("encoder_block_causal")
    if block_causal is None:
        block_causal = model.config.tiger_encoder_attention == "block_causal"
    states = model.encoder(
        input_ids=encoder_ids, attention_mask=encoder_mask(segments, block_causal=block_causal, dtype=dtype)
    ).last_hidden_state
    block = batch["decoder_block"]
    positions = torch.arange(block.shape[1], device=block.device)
    self_allowed = (
        (block[:, :, None] == block[:, None, :])
        & (positions[None, None, :] <= positions[None, :, None])
        & (block[:, None, :] >= 0)
    )
    history = batch["decoder_history"]
    level = level_mask(model.config, model.config.vocab_size)
    cross_allowed = (segments[:, None, :] >= 0) & (segments[:, None, :] <= history[:, :, None])
    output = model(
        encoder_outputs=(states,),
        attention_mask=_additive(cross_allowed, dtype),
        decoder_input_ids=batch["decoder_ids"],
        decoder_attention_mask=_additive(self_allowed, dtype),
        labels=None if level is not None else batch["labels"],
    )
    if level is None:
        return output.loss
    logits = restrict_to_level(output.logits, block_depth(block), level)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten(), ignore_index=-100)
