"""The trie as a ``transformers.LogitsProcessor``, for any Hugging Face ``generate`` call.

LLM generators (LC-Rec style) add ``<a_12>``-style tokens to their tokenizer with
arbitrary ids; build the tables with ``TrieTables.build(trie, vocab,
token_ids=ids, eos_token_id=tokenizer.eos_token_id)`` where ``ids[t]`` is the model
id of vocab token ``t`` (``vocab.tokens()[t]``). Seq2seq models in the fixed semid
layout use the default tables.

Generated tokens are found by position: everything after ``prompt_length`` (the
padded prompt length for decoder-only models, ``1`` for the decoder start token of
encoder-decoder models). No marker string or magic offset is involved.

Settings: pass decoding parameters explicitly to ``generate`` (``do_sample=False``,
``num_beams``, ``length_penalty=0.0`` for summed log-probabilities,
``max_new_tokens=tables.max_steps``, ``eos_token_id=tables.eos_token_id`` when
``tables.uses_eos``), because a model's ``generation_config`` may carry sampling
defaults that silently change beam search. Map the returned sequences to items with
:func:`sequences_to_items`, which returns ``-1`` for anything that is not a complete
code (Hugging Face pads the output with placeholder rows when fewer hypotheses
than requested exist).
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from semid.errors import ParameterError

from .tables import TrieTables

__all__ = ["TrieLogitsProcessor", "sequences_to_items"]


class TrieLogitsProcessor(LogitsProcessor):
    """Masks every token that does not continue a valid code.

    Args:
        tables: the index's :class:`TrieTables` with the model's token ids.
        prompt_length: number of leading positions of ``input_ids`` that are not
            generated (prompt, or the decoder start token).

    Rows whose generated tokens already left the trie can only be dead beams (Hugging
    Face keeps ``-inf``-scored placeholders when fewer valid continuations than beams
    exist), and rows that closed a code with EOS are finished: both may only emit
    EOS, which never creates a code (dead rows keep their ``-inf`` score).

    Raises (when called):
        ParameterError: a live row at a complete code with nothing allowed next
            (generation continues past the code's end: set ``max_new_tokens`` to
            ``tables.max_steps``, and ``eos_token_id`` when the tables use EOS), or a
            model vocabulary smaller than the tables' token ids.
    """

    def __init__(self, tables: TrieTables, *, prompt_length: int):
        if int(prompt_length) < 0:
            raise ParameterError(f"prompt_length must be >= 0, got {prompt_length}")
        if not tables.uses_eos and not tables.fixed_length:
            raise ParameterError(
                "codes of different lengths need an end token with generate(): build the tables "
                "with require_eos=True"
            )
        self.tables = tables
        self.prompt_length = int(prompt_length)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        tables = self.tables.to(scores.device)
        rows, vocab_size = scores.shape
        if vocab_size < tables.min_vocab_size:
            raise ParameterError(
                f"the model scores {vocab_size} tokens but the index needs model token ids up to "
                f"{tables.min_vocab_size - 1}"
            )
        if input_ids.shape[1] < self.prompt_length:
            raise ParameterError(
                f"input_ids have {input_ids.shape[1]} positions, fewer than prompt_length={self.prompt_length}"
            )
        generated = input_ids[:, self.prompt_length :]
        depth = generated.shape[1]
        nodes, finished, valid = tables.walk(generated)
        live = valid & ~finished
        allowed, _ = tables.allowed(nodes, live)  # (R, W); -1 padding and for rows not live
        eos = tables.eos_token_id
        # Without EOS a finished row is a complete code that generate() wants to extend:
        # nothing is allowed. With EOS it is a closed hypothesis being padded.
        overrun = valid & finished if not tables.uses_eos else torch.zeros_like(valid)
        eos_ok = (live & tables.eos_allowed[nodes]) | (~live & ~overrun)
        allowed = torch.cat([allowed, torch.where(eos_ok, eos, -1).unsqueeze(1)], dim=1)
        empty = (allowed < 0).all(dim=1)
        if bool(empty.any()):
            row = int(empty.nonzero()[0, 0])
            raise ParameterError(
                f"no token may follow generated tokens {generated[row].tolist()} (row {row}): the code "
                f"is complete after {depth} tokens; set max_new_tokens={tables.max_steps}"
                + (f" and eos_token_id={eos}" if tables.uses_eos else "")
                + " in generate()"
            )
        # Scatter 0 into allowed cells; padding goes to an extra column that is dropped.
        target = torch.where(allowed >= 0, allowed, vocab_size)
        mask = torch.full((rows, vocab_size + 1), float("-inf"), dtype=scores.dtype, device=scores.device)
        mask.scatter_(1, target, 0.0)
        return scores + mask[:, :vocab_size]


def sequences_to_items(tables: TrieTables, sequences: torch.Tensor, *, prompt_length: int) -> torch.Tensor:
    """Item position of each ``generate`` output row, ``-1`` when it is not a complete code.

    Args:
        sequences: ``int64 (R, T)`` as returned by ``generate`` (prompt included).
        prompt_length: as given to :class:`TrieLogitsProcessor`.

    Returns:
        ``int64 (R,)``.
    """
    tables = tables.to(sequences.device)
    return tables.item_of_sequences(sequences[:, int(prompt_length) :])
