"""Helpers for the decoding tests: random tries, a deterministic fake model, exhaustive scoring.

The fake stepper is plumbing only: next-token log-probabilities are a fixed random
function of (user, prefix), so an item's exact sequence log-probability can be
computed independently of the beam search and compared with it.
"""

from __future__ import annotations

import numpy as np
import torch

from semid.gen.decoding import TrieTables
from semid.trie import CodeTrie, pad_codes
from semid.vocab import CodeVocab

_MOD = 2**31 - 1


def random_codes(seed: int, n_levels: int, size: int, n_items: int, variable: bool) -> np.ndarray:
    """Unique random codes, ``int32 (n, n_levels)`` ``-1`` padded (``n <= n_items``)."""
    rng = np.random.default_rng(seed)
    codes = set()
    for _ in range(n_items):
        length = int(rng.integers(1, n_levels + 1)) if variable else n_levels
        codes.add(tuple(int(x) for x in rng.integers(0, size, size=length)))
    return pad_codes(sorted(codes))


def make_tables(codes: np.ndarray, size: int, **options) -> tuple[CodeTrie, CodeVocab, TrieTables]:
    trie = CodeTrie(codes)
    vocab = CodeVocab([size] * codes.shape[1])
    return trie, vocab, TrieTables.build(trie, vocab, cache=False, **options)


class PrefixHashStepper:
    """Fake model whose next-token log-probs depend only on (user, prefix) through a hash."""

    def __init__(self, vocab_size: int, *, seed: int = 0, buckets: int = 997, scale: float = 3.0):
        gen = torch.Generator().manual_seed(seed)
        self.table = (torch.randn(buckets, vocab_size, generator=gen) * scale).log_softmax(-1)
        self.buckets = buckets

    def _log_probs(self, state: torch.Tensor) -> torch.Tensor:
        return self.table[state % self.buckets]

    def start(self, users: torch.Tensor, num_beams: int):
        state = (users.long().repeat_interleave(num_beams) * 7919 + 13) % _MOD
        return self._log_probs(state), state

    def step(self, state: torch.Tensor, tokens: torch.Tensor, parents: torch.Tensor):
        state = (state[parents] * 1_000_003 + tokens + 1) % _MOD
        return self._log_probs(state), state

    def sequence_log_probs(self, user: int, tokens: list[int]) -> list[float]:
        """Log-prob of each token of ``tokens`` given the ones before it."""
        state = torch.tensor([(user * 7919 + 13) % _MOD])
        out = []
        for token in tokens:
            out.append(float(self._log_probs(state)[0, token]))
            state = (state * 1_000_003 + token + 1) % _MOD
        return out


def model_tokens(tables: TrieTables, vocab: CodeVocab, code) -> list[int]:
    """Model tokens of a code under the fixed layout, with EOS when the tables use it."""
    tokens = [2 + vocab.token_id(level, int(index)) for level, index in enumerate(code) if index >= 0]
    return tokens + ([tables.eos_token_id] if tables.uses_eos else [])


def forced_steps(trie: CodeTrie, tables: TrieTables, code) -> list[bool]:
    """For each emitted token of ``code`` (EOS included when used): was it the only option?"""
    node, out = 0, []
    for index in [int(c) for c in code if c >= 0] + ([None] if tables.uses_eos else []):
        options = int(tables.n_children[node]) + int(bool(tables.eos_allowed[node]))
        out.append(options == 1)
        if index is not None:
            node = trie.step(node, index)
    return out
