"""A :class:`Stepper` for ``transformers.T5ForConditionalGeneration`` (TIGER).

The encoder and the first decoder step run once per user; the decoder then runs one
token per step for every beam with a key/value cache (``EncoderDecoderCache`` of two
``DynamicCache``, transformers 5.x ``cache=`` argument). Between steps only the self-attention cache is reordered by
``parents``: the cross-attention keys/values are the encoder's, identical for all
beams of a user, and parents never cross users, so reordering them would copy
equal rows.

The decoder starts from ``model.config.decoder_start_token_id`` (``0`` = pad in the
fixed semid layout, see :mod:`semid.gen.decoding.tables`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from semid.errors import ParameterError

from .level_softmax import level_mask, restrict_to_level

__all__ = ["FastT5Stepper", "T5Stepper"]


@dataclass
class _T5State:
    encoder_hidden: torch.Tensor  # float (B * beams, S, d_model)
    encoder_mask: torch.Tensor | None  # int64 (B * beams, S)
    cache: Any  # transformers EncoderDecoderCache
    position: int = 0  # decoder tokens fed so far (the depth of the next code token)


class T5Stepper:
    """Incremental decoding of a T5 model for :func:`constrained_beam_search`.

    Args:
        model: a ``transformers.T5ForConditionalGeneration`` in eval mode (run
            under ``torch.inference_mode``). :class:`FastT5Stepper` gives the same
            log-probabilities faster.

    ``batch_inputs`` for :meth:`start`: either a ``LongTensor (B, S)`` of encoder
    input ids, or a mapping with ``"input_ids"`` and optionally ``"attention_mask"``
    (``(B, S)``, 1 = real token, 0 = padding).
    """

    def __init__(self, model):
        _require_eval(model)
        self.model = model
        start = getattr(model.config, "decoder_start_token_id", None)
        self.decoder_start_token_id = 0 if start is None else int(start)
        self.level_mask = level_mask(model.config, int(model.config.vocab_size))

    def start(self, batch_inputs: Any, num_beams: int) -> tuple[torch.Tensor, _T5State]:
        """Encode, expand to ``num_beams`` rows per user, score the first decoder token."""
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        input_ids, mask = _unpack(batch_inputs)
        device = next(self.model.parameters()).device
        input_ids = input_ids.to(device)
        mask = mask.to(device) if mask is not None else None
        with torch.inference_mode():
            encoded = self.model.get_encoder()(input_ids=input_ids, attention_mask=mask)
            # the decoder's own config: its layer count may differ from the encoder's
            config = self.model.decoder.config
            cache = EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))
            # All beams of a user are identical until the first token is chosen: run the
            # first decoder step (and the cross-attention key/value projections, the
            # costliest part of a small decoder) once per user, then copy to the beams.
            state = _T5State(encoded.last_hidden_state, mask, cache)
            first = torch.full((input_ids.shape[0], 1), self.decoder_start_token_id, dtype=torch.long, device=device)
            log_probs = self._decode(state, first)
            state.cache.batch_repeat_interleave(num_beams)
            state.encoder_hidden = state.encoder_hidden.repeat_interleave(num_beams, dim=0)
            if mask is not None:
                state.encoder_mask = mask.repeat_interleave(num_beams, dim=0)
            return log_probs.repeat_interleave(num_beams, dim=0), state

    def step(self, state: _T5State, tokens: torch.Tensor, parents: torch.Tensor) -> tuple[torch.Tensor, _T5State]:
        """Reorder the self-attention cache by ``parents`` and feed ``tokens``."""
        with torch.inference_mode():
            state.cache.self_attention_cache.reorder_cache(parents)
            return self._decode(state, tokens.view(-1, 1)), state

    def _decode(self, state: _T5State, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        out = self.model(
            encoder_outputs=(state.encoder_hidden,),
            attention_mask=state.encoder_mask,
            decoder_input_ids=decoder_input_ids,
            cache=state.cache,
            use_cache=True,
        )
        state.cache = out.cache
        logits = restrict_to_level(out.logits[:, -1, :].float(), state.position, self.level_mask)
        state.position += 1
        return torch.log_softmax(logits, dim=-1)


def _require_eval(model) -> None:
    if getattr(model, "training", False):
        raise ParameterError("the model is in training mode (dropout active); call model.eval() before decoding")


def _unpack(batch_inputs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch_inputs, torch.Tensor):
        input_ids, mask = batch_inputs, None
    elif isinstance(batch_inputs, Mapping) and "input_ids" in batch_inputs:
        input_ids, mask = batch_inputs["input_ids"], batch_inputs.get("attention_mask")
    else:
        raise ParameterError(
            "T5Stepper batch_inputs must be a LongTensor (B, S) of input ids or a mapping with "
            f"'input_ids' and optionally 'attention_mask', got {type(batch_inputs).__name__}"
        )
    if input_ids.dim() != 2:
        raise ParameterError(f"T5Stepper input_ids must have shape (batch, length), got {tuple(input_ids.shape)}")
    if mask is not None and mask.shape != input_ids.shape:
        raise ParameterError(
            f"attention_mask shape {tuple(mask.shape)} does not match input_ids shape {tuple(input_ids.shape)}"
        )
    return input_ids.long(), (mask.long() if mask is not None else None)


@dataclass
class _FastState:
    cross_keys: list[torch.Tensor]  # per layer, float (B, H, S, d_kv): computed once per user
    cross_values: list[torch.Tensor]
    encoder_bias: torch.Tensor  # float (B, 1, 1, S): 0 for real tokens, dtype min for padding
    self_keys: list[torch.Tensor]  # per layer, float (B * beams, H, t, d_kv)
    self_values: list[torch.Tensor]
    beams: int
    position: int  # decoder tokens fed so far


class FastT5Stepper:
    """:class:`T5Stepper` with cross-attention grouped by user; same results, less memory traffic.

    A user's beams share the encoder, so their cross-attention keys/values are
    identical. ``T5Stepper`` (the model's own forward) must hold a copy per beam: with
    20 beams, 81 input tokens and 4 layers that is 20x the data, and reading it every
    step dominates the decoder's time on a CPU. Here the beams' queries of one user
    attend together to one copy, ``(B, H, beams, d_kv) x (B, H, S, d_kv)``.

    The decoder step is composed from the model's own modules (embedding, layer
    norms, q/k/v/o projections, relative position bias, feed-forward, lm_head), in
    the order of ``transformers``' ``T5Block``; tests check its log-probabilities
    against the model's forward. Inference only (no dropout).

    Args:
        model: a ``transformers.T5ForConditionalGeneration``.
    """

    def __init__(self, model):
        _require_eval(model)
        self.model = model
        start = getattr(model.config, "decoder_start_token_id", None)
        self.decoder_start_token_id = 0 if start is None else int(start)
        config = model.config
        self.n_heads, self.d_kv = int(config.num_heads), int(config.d_kv)
        scale = getattr(config, "scale_decoder_outputs", None)
        self.scale_output = bool(config.tie_word_embeddings if scale is None else scale)
        self.level_mask = level_mask(config, int(config.vocab_size))

    def start(self, batch_inputs: Any, num_beams: int) -> tuple[torch.Tensor, _FastState]:
        """Encode, project cross-attention keys/values once per user, score the first token."""
        input_ids, mask = _unpack(batch_inputs)
        device = next(self.model.parameters()).device
        input_ids = input_ids.to(device)
        mask = mask.to(device) if mask is not None else torch.ones_like(input_ids)
        with torch.inference_mode():
            hidden = self.model.get_encoder()(input_ids=input_ids, attention_mask=mask).last_hidden_state
            keys, values = [], []
            for block in self.model.decoder.block:
                attention = block.layer[1].EncDecAttention
                keys.append(self._heads(attention.k(hidden)))
                values.append(self._heads(attention.v(hidden)))
            bias = torch.zeros(mask.shape, dtype=hidden.dtype, device=device)
            bias = bias.masked_fill(mask == 0, torch.finfo(hidden.dtype).min)[:, None, None, :]
            n_layers = len(keys)
            state = _FastState(keys, values, bias, [None] * n_layers, [None] * n_layers, 1, 0)
            first = torch.full((input_ids.shape[0],), self.decoder_start_token_id, dtype=torch.long, device=device)
            log_probs = self._decode(state, first)
            state.self_keys = [k.repeat_interleave(num_beams, dim=0) for k in state.self_keys]
            state.self_values = [v.repeat_interleave(num_beams, dim=0) for v in state.self_values]
            state.beams = num_beams
            return log_probs.repeat_interleave(num_beams, dim=0), state

    def step(self, state: _FastState, tokens: torch.Tensor, parents: torch.Tensor) -> tuple[torch.Tensor, _FastState]:
        """Reorder the self-attention cache by ``parents`` and feed ``tokens``."""
        with torch.inference_mode():
            state.self_keys = [k.index_select(0, parents) for k in state.self_keys]
            state.self_values = [v.index_select(0, parents) for v in state.self_values]
            return self._decode(state, tokens.view(-1)), state

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(R, T, H * d_kv)`` -> ``(R, H, T, d_kv)``."""
        return x.view(x.shape[0], x.shape[1], self.n_heads, self.d_kv).transpose(1, 2)

    def _decode(self, state: _FastState, tokens: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        decoder = self.model.decoder
        rows, users = tokens.shape[0], state.encoder_bias.shape[0]
        hidden = decoder.embed_tokens(tokens).unsqueeze(1)  # (R, 1, d)
        first_attention = decoder.block[0].layer[0].SelfAttention
        position_bias = first_attention.compute_bias(1, state.position + 1, device=hidden.device,
                                                     past_seen_tokens=state.position)  # (1, H, 1, t + 1)
        for i, block in enumerate(decoder.block):
            self_layer, cross_layer, ff_layer = block.layer[0], block.layer[1], block.layer[-1]
            attention = self_layer.SelfAttention
            normed = self_layer.layer_norm(hidden)
            query = self._heads(attention.q(normed))
            key, value = self._heads(attention.k(normed)), self._heads(attention.v(normed))
            if state.self_keys[i] is not None:
                key = torch.cat([state.self_keys[i], key], dim=2)
                value = torch.cat([state.self_values[i], value], dim=2)
            state.self_keys[i], state.self_values[i] = key, value
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=position_bias, scale=1.0)
            hidden = hidden + attention.o(out.transpose(1, 2).reshape(rows, 1, -1))

            cross = cross_layer.EncDecAttention
            normed = cross_layer.layer_norm(hidden)
            # (R, 1, inner) -> (B, H, beams, d_kv): a user's beams are query positions of one row
            query = cross.q(normed).view(users, -1, self.n_heads, self.d_kv).transpose(1, 2)
            out = F.scaled_dot_product_attention(
                query, state.cross_keys[i], state.cross_values[i], attn_mask=state.encoder_bias, scale=1.0
            )
            hidden = hidden + cross.o(out.transpose(1, 2).reshape(rows, 1, -1))
            hidden = ff_layer(hidden)
        hidden = decoder.final_layer_norm(hidden)
        if self.scale_output:
            hidden = hidden * (self.model.model_dim**-0.5)
        logits = restrict_to_level(self.model.lm_head(hidden[:, 0, :]).float(), state.position, self.level_mask)
        state.position += 1
        return torch.log_softmax(logits, dim=-1)
