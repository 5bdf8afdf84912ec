"""Prompt / answer pairs as token ids, the way a tuned model is later asked to continue them.

Every tuner (S-DPO, InstructRec, TALLRec) trains ``prompt -> answer`` and then
generates or scores answers after the prompt's own token ids. The answer's ids
must therefore be exactly what the model emits after ``tokenizer(prompt)``.
Tokenizing ``prompt + answer`` and cutting it at the prompt's length is only
right when the joint tokenization starts with the prompt's tokens: a prompt
ending in a space ("... Answer: ") merges that space into the answer's first
word under byte-level BPE, and the cut then drops the word's first characters
(SmolLM2: "Nivea Soft Cream" became "ivea Soft Cream"), so the model learns
answers no parser can match. :func:`encode_pair` cuts only where the
boundary is clean and otherwise tokenizes the answer on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["encode_pair", "pad_pairs"]

IGNORE_INDEX = -100


def encode_pair(tokenizer, prompt: str, answer: str, *, eos: bool = True) -> tuple[list[int], list[int]]:
    """``(prompt ids, answer ids)``: the answer ids are what the model must generate after the prompt ids.

    ``decode(prompt ids + answer ids)`` reads ``prompt + answer`` (then EOS when ``eos``).
    """
    head = tokenizer(prompt)["input_ids"]
    joint = tokenizer(prompt + answer)["input_ids"]
    if joint[: len(head)] == head and len(joint) > len(head):
        tail = joint[len(head):]
    else:  # the boundary merged: the answer's own tokens follow the prompt's
        tail = tokenizer(answer, add_special_tokens=False)["input_ids"]
    return head, tail + ([tokenizer.eos_token_id] if eos else [])


def pad_pairs(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int, *, max_length: int | None = None):
    """Right-padded ``(input_ids, attention_mask, labels)``, ``int64 (B, T)``; labels only on answers.

    ``max_length`` keeps each row's last tokens (the answer survives, the prompt's start is cut).
    """
    import torch

    rows = []
    for head, tail in pairs:
        row = list(head) + list(tail)
        start = len(head)
        if max_length is not None and len(row) > max_length:
            start = max(0, start - (len(row) - max_length))
            row = row[-max_length:]
        rows.append((row, start))
    width = max(len(row) for row, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for r, (row, start) in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[r, : len(row)] = 1
        labels[r, start : len(row)] = ids[r, start : len(row)]
    return ids, mask, labels
