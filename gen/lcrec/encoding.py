"""Turning instruction examples into token ids, and batches into tensors.

A prompt is the instruction wrapped in the model's chat template (when the
tokenizer has one) or in the prompt file's plain format. Only the response and
its closing EOS carry a loss. When prompt + response exceed ``max_length``, the
oldest history items are dropped first (logged); a response that still does
not fit is cut (text tasks only); an example that cannot fit even so is skipped
with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from semid.errors import ParameterError

from .tasks import Example
from .templates import PromptSet

__all__ = ["EncodedExample", "PromptFormatter", "collate_for_training", "encode_examples", "left_pad"]

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedExample:
    """``input_ids`` = prompt ids + response ids (ending in EOS); ``prompt_length`` splits them."""

    input_ids: tuple[int, ...]
    prompt_length: int
    task: str


class PromptFormatter:
    """Wraps instructions in a chat template or the plain format, and tokenises them."""

    def __init__(self, tokenizer, prompts: PromptSet):
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.use_chat = bool(getattr(tokenizer, "chat_template", None))
        if tokenizer.eos_token_id is None:
            raise ParameterError("the tokenizer defines no EOS token; LC-Rec needs one to end answers")
        self.eos_token_id = int(tokenizer.eos_token_id)

    def prompt_text(self, instruction: str) -> str:
        if self.use_chat:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
            )
        return self.prompts.plain_prompt_format.replace("{instruction}", instruction)

    def prompt_ids(self, instruction: str) -> list[int]:
        # A chat template writes its own special tokens; the plain format gets BOS
        # from the tokenizer when it defines one.
        return self.tokenizer(self.prompt_text(instruction), add_special_tokens=not self.use_chat)["input_ids"]

    def fit_prompt(self, example: Example, budget: int) -> tuple[list[int], int]:
        """Prompt ids of ``example`` within ``budget`` tokens, and the number of history items dropped.

        Raises:
            ParameterError: the prompt does not fit even with no history.
        """
        ids = self.prompt_ids(example.instruction())
        if len(ids) <= budget:
            return ids, 0
        n = example.history_length
        # Binary search on the number of dropped (oldest) items: prompt length
        # only shrinks as items are dropped.
        lo, hi = 1, n
        best: list[int] | None = None
        best_drop = n
        while lo <= hi:
            mid = (lo + hi) // 2
            candidate = self.prompt_ids(example.instruction(mid))
            if len(candidate) <= budget:
                best, best_drop, hi = candidate, mid, mid - 1
            else:
                lo = mid + 1
        if best is None:
            raise ParameterError(
                f"a {example.task} prompt needs {len(self.prompt_ids(example.instruction(n)))} tokens even "
                f"without history, more than the {budget} available; raise max_length"
            )
        return best, best_drop


def encode_examples(
    examples: Sequence[Example], formatter: PromptFormatter, max_length: int
) -> list[EncodedExample]:
    """Tokenise ``examples`` for training (see the module docstring for truncation)."""
    out: list[EncodedExample] = []
    truncated = dropped = skipped = cut = 0
    for example in examples:
        response = formatter.tokenizer(example.response, add_special_tokens=False)["input_ids"]
        response = [*response, formatter.eos_token_id]
        is_text = example.task in ("text", "index2item", "preferenceobtain") or (
            example.task == "fusionseqrec" and "{item}" not in example.template
        )
        try:
            min_response = min(len(response), 16) if is_text else len(response)
            prompt, n_drop = formatter.fit_prompt(example, max_length - min_response)
        except ParameterError:
            skipped += 1
            continue
        if n_drop:
            truncated += 1
            dropped += n_drop
        room = max_length - len(prompt)
        if len(response) > room:
            response = [*response[: room - 1], formatter.eos_token_id]
            cut += 1
        out.append(EncodedExample(tuple(prompt + response), len(prompt), example.task))
    if truncated:
        logger.warning(
            "%d prompts were longer than max_length=%d: dropped %d oldest history items in total",
            truncated, max_length, dropped,
        )
    if cut:
        logger.info("%d text answers were cut to fit max_length=%d", cut, max_length)
    if skipped:
        logger.warning("skipped %d examples whose prompt alone exceeds max_length=%d", skipped, max_length)
    return out


def collate_for_training(batch: Sequence[EncodedExample], pad_token_id: int):
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (``int64 (B, T)``).

    Labels are ``-100`` on prompt and padding positions, so only responses count.
    """
    import torch

    width = max(len(e.input_ids) for e in batch)
    input_ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, example in enumerate(batch):
        ids = torch.tensor(example.input_ids, dtype=torch.long)
        input_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = 1
        labels[row, example.prompt_length : len(ids)] = ids[example.prompt_length :]
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def left_pad(prompts: Sequence[Sequence[int]], pad_token_id: int):
    """Left-padded ``input_ids`` and ``attention_mask`` (``int64 (B, T)``) for generation."""
    import torch

    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return input_ids, mask
