"""LC-Rec inference: next-item recommendation by trie-constrained decoding.

:class:`LCRecRecommender` implements ``recommend(histories, k, *, exclude, users)``
(so :func:`semid.evaluation.evaluate` works) with the first ``seqrec`` template
of the run's prompt set. Two decoding methods:

- ``"beam"``: constrained beam search ranking by the summed log-probabilities of
  the code tokens and EOS (no length normalisation). Two engines give the same
  ranking (a test checks it): ``engine="stepper"`` (default) runs
  :func:`semid.gen.decoding.decode` over :class:`CausalLMStepper`, which encodes
  each prompt once and copies its cache to the beams; ``engine="generate"`` is
  Hugging Face ``generate`` with :class:`TrieLogitsProcessor`, every generation
  setting explicit (``do_sample=False``, ``num_beams``, ``length_penalty=0``, a
  fresh ``GenerationConfig`` so nothing leaks in from the model's own, ANCHORS
  pitfall 6); ``generate`` repeats the prompt for every beam, which costs
  ``num_beams`` times more prompt compute on a CPU.
- ``"d3"``: :func:`semid.gen.decoding.decode` with D3 (no length normalisation,
  ghost tokens debiased, optional assistant such as item popularity weighted by
  ``alpha``).

Generated tokens are found by the padded prompt length, never by a marker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from semid.evaluation.split import DEFAULT_MAX_HISTORY
from semid.errors import ParameterError

from .encoding import PromptFormatter, left_pad
from .tasks import Example

__all__ = ["LCRecRecommender", "plain_answer"]

logger = logging.getLogger(__name__)


class LCRecRecommender:
    """A tuned LLM plus its index, ranking items for histories.

    Args:
        model: the causal LM (peft-wrapped or plain), in eval mode.
        tokenizer: its tokenizer, holding the code tokens.
        index: the fitted :class:`semid.ItemTokenizer` the run was trained on.
        token_map: ``int64 (vocab.n_tokens,)`` tokenizer id of each vocab token.
        formatter: wraps instructions as in training.
        seqrec_template: the instruction template used for recommendation.
        max_length: prompts longer than this lose their oldest history items.
        num_beams, batch_size: decoding width and prompts decoded together.
        decoding: ``"beam"`` or ``"d3"``; ``alpha`` and ``assistant`` for D3.
    """

    def __init__(self, model, tokenizer, index, token_map, formatter: PromptFormatter, seqrec_template: str, *,
                 max_length: int = 384, max_history: int = DEFAULT_MAX_HISTORY, num_beams: int = 20, batch_size: int = 4,
                 decoding: str = "beam", alpha: float = 0.0, assistant=None, engine: str = "stepper"):
        from semid.gen.decoding.tables import TrieTables

        if decoding not in ("beam", "d3"):
            raise ParameterError(f"unknown decoding {decoding!r}; valid: beam, d3")
        if engine not in ("stepper", "generate"):
            raise ParameterError(f"unknown decoding engine {engine!r}; valid: stepper, generate")
        if decoding == "d3" and engine == "generate":
            raise ParameterError("D3 decoding runs on the stepper engine, not generate()")
        self.engine = engine
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.index = index
        self.formatter = formatter
        self.template = seqrec_template
        self.max_length = max_length
        self.max_history = max_history
        self.num_beams = num_beams
        self.batch_size = batch_size
        self.decoding = decoding
        self.alpha = alpha
        self.assistant = assistant
        self.tables = TrieTables.build(
            index.trie, index.vocab, token_ids=token_map, eos_token_id=formatter.eos_token_id, require_eos=True
        )
        self.item_ids = list(index.item_ids)
        self.token_map = token_map

    # -- prompts ------------------------------------------------------------------

    def evaluation_settings(self) -> dict:
        """How this model ranks (recorded by :func:`semid.evaluation.evaluate`)."""
        return {"ranking": f"trie-constrained {self.decoding} search", "num_beams": self.num_beams,
                "alpha": self.alpha, "max_history": self.max_history, "max_length": self.max_length}

    def prompt_ids(self, history: Sequence[str]) -> list[int]:
        """Token ids of the recommendation prompt, history cut from the old end to fit."""
        history = list(history)[-self.max_history :]
        example = Example("seqrec", self.template, "", history=tuple(self.index.render(i) for i in history))
        ids, dropped = self.formatter.fit_prompt(example, self.max_length - self.tables.max_steps)
        if dropped:
            logger.warning("recommendation prompt longer than max_length=%d: dropped the %d oldest history items",
                           self.max_length, dropped)
        return ids

    # -- recommendation -------------------------------------------------------------
    def recommend(self, histories: Sequence[Sequence[str]], k: int, *, exclude: Sequence[set[str]] | None = None,
                  users: Sequence[str] | None = None) -> list[list[str | None]]:
        """Per history, up to ``k`` item ids best first (``None`` never appears: decoding is constrained).

        ``exclude`` items are dropped from the decoded list; a user whose excluded
        items leave fewer than ``k`` of the ``num_beams`` candidates is decoded again
        with ``k + len(exclude)`` (:func:`semid.gen.decoding.exclusion.ranked_without`).
        """
        from semid.gen.decoding.exclusion import ranked_without

        if k < 1:
            raise ParameterError(f"k must be >= 1, got {k}")
        out: list[list[str | None]] = []
        for start in range(0, len(histories), self.batch_size):
            chunk = histories[start : start + self.batch_size]
            skip = list(exclude[start : start + self.batch_size]) if exclude is not None else [set()] * len(chunk)

            def ranked(rows: list[int], width: int) -> list[list[str]]:
                sub = [chunk[b] for b in rows]
                positions = self._decode([self.prompt_ids(h) for h in sub], max(self.num_beams, width), sub)
                return [[self.item_ids[p] for p in row if p >= 0][:width] for row in positions]

            out.extend(ranked_without(ranked, skip, k, self.num_beams, self.tables.n_items))
        return out

    @torch.no_grad()
    def _decode(self, prompts: list[list[int]], width: int, histories) -> list[list[int]]:
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.formatter.eos_token_id
        input_ids, mask = left_pad(prompts, pad)
        device = next(self.model.parameters()).device
        input_ids, mask = input_ids.to(device), mask.to(device)
        if self.engine == "stepper":
            from semid.gen.decoding.decode import DecodingConfig, decode

            from .stepper import CausalLMStepper

            config = DecodingConfig(decoding=self.decoding, num_beams=width, alpha=self.alpha)
            items, _ = decode(CausalLMStepper(self.model), self.tables, (input_ids, mask), k=width, config=config,
                              histories=[list(h) for h in histories], assistant=self.assistant)
            return items.tolist()
        return self._generate(input_ids, mask, width, pad)

    def _generate(self, input_ids, mask, width: int, pad: int) -> list[list[int]]:
        from transformers import GenerationConfig, LogitsProcessorList

        from semid.gen.decoding.logits_processor import TrieLogitsProcessor, sequences_to_items

        prompt_length = input_ids.shape[1]
        generation = GenerationConfig(
            do_sample=False, num_beams=width, num_return_sequences=width, length_penalty=0.0,
            early_stopping=True, max_new_tokens=self.tables.max_steps, eos_token_id=self.tables.eos_token_id,
            pad_token_id=pad, temperature=None, top_k=None, top_p=None, use_cache=True,
        )
        sequences = self.model.generate(
            input_ids=input_ids, attention_mask=mask, generation_config=generation,
            logits_processor=LogitsProcessorList([TrieLogitsProcessor(self.tables, prompt_length=prompt_length)]),
        )
        items = sequences_to_items(self.tables, sequences, prompt_length=prompt_length)
        return items.view(input_ids.shape[0], width).tolist()

    # -- plain text -----------------------------------------------------------------
    def answer(self, question: str, *, max_new_tokens: int = 48) -> str:
        """Greedy, unconstrained answer to a plain-text question (language ability check)."""
        return plain_answer(self.model, self.tokenizer, self.formatter, question, max_new_tokens=max_new_tokens)


@torch.no_grad()
def plain_answer(model, tokenizer, formatter: PromptFormatter, question: str, *, max_new_tokens: int = 48) -> str:
    """Greedy answer of ``model`` to ``question`` wrapped like a training prompt, no constraint."""
    from transformers import GenerationConfig

    ids = torch.tensor([formatter.prompt_ids(question)], device=next(model.parameters()).device)
    generation = GenerationConfig(
        do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, eos_token_id=formatter.eos_token_id,
        pad_token_id=formatter.eos_token_id, temperature=None, top_k=None, top_p=None,
    )
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=generation)
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()
