"""A decoder-only language model seen one decoding step at a time (for D3 decoding).

Implements the :class:`semid.gen.decoding.beam.Stepper` protocol: ``start`` runs
each user's (left-padded) prompt once, copies the key/value cache to every beam
and returns the log-probabilities of the first generated token; ``step``
reorders the cache rows by their parent beams and feeds one token per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["CausalLMStepper"]


@dataclass
class _State:
    cache: object
    attention_mask: torch.Tensor  # (rows, T) 1 for real tokens (prompt + generated)


class CausalLMStepper:
    """Stepper over a Hugging Face causal LM.

    ``batch_inputs`` for :meth:`start` is ``(input_ids, attention_mask)``, both
    ``int64 (B, T)`` and left-padded (see :func:`semid.gen.lcrec.encoding.left_pad`).
    """

    def __init__(self, model):
        import inspect

        self.model = model
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        # transformers 5 renamed ``past_key_values`` to ``cache`` (the old name still
        # works but warns); use whichever the model's forward declares.
        self._cache_arg = "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"

    def _forward(self, input_ids, attention_mask, cache):
        # Positions count real tokens only, so left padding does not shift them.
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1] :]
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True,
            **{self._cache_arg: cache},
        )
        new_cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        return torch.log_softmax(out.logits[:, -1, :].float(), dim=-1), new_cache

    @torch.no_grad()
    def start(self, batch_inputs, num_beams: int):
        from transformers import DynamicCache

        input_ids, attention_mask = batch_inputs
        device = next(self.model.parameters()).device
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        log_probs, cache = self._forward(input_ids, attention_mask, DynamicCache())
        cache.batch_repeat_interleave(num_beams)
        mask = attention_mask.repeat_interleave(num_beams, dim=0)
        return log_probs.repeat_interleave(num_beams, dim=0), _State(cache, mask)

    @torch.no_grad()
    def step(self, state: _State, tokens: torch.Tensor, parents: torch.Tensor):
        state.cache.reorder_cache(parents)
        mask = state.attention_mask[parents]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        log_probs, cache = self._forward(tokens.unsqueeze(1), mask, state.cache)
        return log_probs, _State(cache, mask)
