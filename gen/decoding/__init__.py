"""Trie-constrained decoding of semantic-ID generators.

- :class:`TrieTables`: the index's trie as CSR torch tables (built once per index, cached).
  States the fixed seq2seq vocabulary layout (0 pad/decoder start, 1 EOS,
  ``2 + vocab.token_id(level, index)`` code tokens, user tokens after).
- :func:`constrained_beam_search` over a :class:`Stepper` (:class:`T5Stepper` uses the
  model's forward; :class:`FastT5Stepper`, same results, shares cross-attention per user):
  batched, vectorized beam search returning ``k`` distinct valid items per user.
- :func:`decode` with :class:`DecodingConfig`: ``decoding="beam"`` or ``"d3"``
  (ghost-token debiasing and a text-free assistant such as :class:`PopularityScorer`).
- :class:`TrieLogitsProcessor` and :func:`sequences_to_items`: the same constraint
  inside any Hugging Face ``generate`` call (LLM generators).

Minimal use with a TIGER-style T5::

    tables = TrieTables.from_tokenizer(tokenizer)        # cached per index
    items, scores = decode(FastT5Stepper(model.eval()), tables,
                           {"input_ids": ids, "attention_mask": mask}, k=10,
                           config=DecodingConfig(num_beams=20))
    # items: int64 (B, 10) tokenizer row positions, -1 padding
"""

from .assistant import (
    ItemScorer,
    PopularityScorer,
    assistant_prefix_sums,
    assistant_token_scores,
    node_log_mass,
    range_log_mass,
)
from .beam import Stepper, constrained_beam_search
from .decode import DECODING_METHODS, DecodingConfig, decode
from .logits_processor import TrieLogitsProcessor, sequences_to_items
from .t5_stepper import FastT5Stepper, T5Stepper
from .tables import EOS_TOKEN_ID, FIRST_CODE_TOKEN_ID, PAD_TOKEN_ID, TrieTables, code_token_ids

__all__ = [
    "DECODING_METHODS",
    "EOS_TOKEN_ID",
    "FIRST_CODE_TOKEN_ID",
    "FastT5Stepper",
    "ItemScorer",
    "PAD_TOKEN_ID",
    "PopularityScorer",
    "Stepper",
    "T5Stepper",
    "TrieLogitsProcessor",
    "TrieTables",
    "assistant_prefix_sums",
    "assistant_token_scores",
    "code_token_ids",
    "constrained_beam_search",
    "decode",
    "node_log_mass",
    "range_log_mass",
    "sequences_to_items",
]
