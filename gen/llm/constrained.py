"""Constrained generation over a closed set of text options: an LLM may only write one of them.

The option texts (candidate titles, a catalogue's movie names, rendered semantic
IDs) are tokenized the way :meth:`LocalCausalLM.score` tokenizes continuations
and stored in a token trie; a ``LogitsProcessor`` lets beam search emit only
tokens that continue some option, and EOS only where an option is complete.
Beam search with ``length_penalty=0`` (summed log-probabilities, no length
normalization, as D3 argues) returns up to ``num_beams`` distinct options, best
first: a ranking that is valid by construction.

This is an approximation of exact scoring (every option's full log-likelihood,
``scoring="loglik"`` in LLMRank): beams are pruned token by token, so an option
whose first tokens are unlikely can be lost even if its total is high. Both are
offered so their difference can be measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

from semid.errors import ParameterError

__all__ = ["OptionTrie", "OptionsLogitsProcessor", "generate_among"]


class OptionTrie:
    """A token trie over option texts.

    Args:
        sequences: token ids of each option (options with identical tokens share one
            leaf; :meth:`options_at` returns all of them, in input order).

    Raises:
        ParameterError: no option, or an option with no token.
    """

    def __init__(self, sequences: Sequence[Sequence[int]]):
        if not sequences:
            raise ParameterError("constrained generation needs at least one option")
        self.children: list[dict[int, int]] = [{}]
        self.ends: dict[int, list[int]] = {}
        for option, tokens in enumerate(sequences):
            if not tokens:
                raise ParameterError(f"option {option} has no token (an empty text cannot be generated)")
            node = 0
            for token in tokens:
                nxt = self.children[node].get(int(token))
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][int(token)] = nxt
                    self.children.append({})
                node = nxt
            self.ends.setdefault(node, []).append(option)
        self.max_length = max(len(s) for s in sequences)

    def walk(self, tokens: Sequence[int]) -> int:
        """Node reached by ``tokens`` from the root, or ``-1`` if they leave the trie."""
        node = 0
        for token in tokens:
            node = self.children[node].get(int(token), -1)
            if node < 0:
                return -1
        return node

    def options_at(self, tokens: Sequence[int]) -> list[int]:
        """Options whose tokens are exactly ``tokens`` (empty if none)."""
        node = self.walk(tokens)
        return list(self.ends.get(node, [])) if node >= 0 else []


class OptionsLogitsProcessor(LogitsProcessor):
    """Masks every token that does not continue an option of ``trie``; EOS where an option ends.

    Rows whose generated tokens left the trie (dead beam placeholders) or that already
    emitted EOS may only emit EOS.
    """

    def __init__(self, trie: OptionTrie, *, prompt_length: int, eos_token_id: int):
        self.trie, self.prompt_length, self.eos = trie, int(prompt_length), int(eos_token_id)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.full_like(scores, float("-inf"))
        for row, ids in enumerate(input_ids[:, self.prompt_length:].tolist()):
            if self.eos in ids:
                mask[row, self.eos] = 0.0
                continue
            node = self.trie.walk(ids)
            if node < 0:
                mask[row, self.eos] = 0.0
                continue
            allowed = list(self.trie.children[node])
            if node in self.trie.ends:
                allowed.append(self.eos)
            mask[row, allowed or [self.eos]] = 0.0
        return scores + mask


def generate_among(model, tokenizer, prompt_ids: Sequence[int], options: Sequence[str], *,
                   num_beams: int) -> list[tuple[int, float]]:
    """Beam search that can only write one of ``options``: ``(option index, summed log-prob)``, best first.

    Args:
        model, tokenizer: a causal LM and its tokenizer (the tokenizer needs an EOS token).
        prompt_ids: the prompt's token ids (chat template already applied if wanted).
        options: the texts the answer must be one of (tokenized with
            ``add_special_tokens=False``, as continuations are scored).
        num_beams: beams, and the most options returned.

    Returns:
        At most ``num_beams`` distinct options; options with identical tokens follow each other.
    """
    if num_beams < 1:
        raise ParameterError(f"num_beams must be >= 1, got {num_beams}")
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ParameterError("the tokenizer has no EOS token; constrained generation ends every option with it")
    sequences = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in options]
    trie = OptionTrie(sequences)
    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=device)
    beams = min(num_beams, len(options))
    processor = OptionsLogitsProcessor(trie, prompt_length=ids.shape[1], eos_token_id=eos)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), logits_processor=[processor],
                             do_sample=False, num_beams=max(beams, 1), num_return_sequences=beams,
                             length_penalty=0.0, early_stopping=True, max_new_tokens=trie.max_length + 1,
                             eos_token_id=eos, pad_token_id=pad, output_scores=True, return_dict_in_generate=True,
                             temperature=None, top_p=None, top_k=None)
    scores = out.sequences_scores.tolist() if getattr(out, "sequences_scores", None) is not None \
        else [0.0] * len(out.sequences)
    ranked: list[tuple[int, float]] = []
    seen: set[int] = set()
    for row, score in zip(out.sequences[:, ids.shape[1]:].tolist(), scores):
        tokens = row[: row.index(eos)] if eos in row else row
        for option in trie.options_at(tokens):
            if option not in seen and math.isfinite(score):
                seen.add(option)
                ranked.append((option, float(score)))
    return ranked

