"""A semid index inside a Hugging Face training script: code tokens in, only valid items out.

Three calls cover what a user's own script needs::

    token_ids = add_index_tokens(model, tokenizer, index)          # tokens added, embeddings resized
    processor = trie_logits_processor(index, token_ids, tokenizer, prompt_length=inputs.shape[1])
    out = model.generate(inputs, logits_processor=[processor], **generation_kwargs(index, tokenizer))
    items = decode_items(index, token_ids, tokenizer, out[:, inputs.shape[1]:])

or, with ``prefix_allowed_tokens_fn`` instead of the processor (slower: it runs in
Python per row and step, but it is the hook transformers documents)::

    out = model.generate(inputs, prefix_allowed_tokens_fn=prefix_allowed_tokens_fn(
        index, token_ids, tokenizer, prompt_length=inputs.shape[1]), **generation_kwargs(index, tokenizer))

Every code token must be one tokenizer id (checked); an item's answer is its code
tokens followed by the tokenizer's EOS.
"""

from __future__ import annotations

from collections.abc import Callable

from semid.errors import ParameterError

__all__ = ["add_index_tokens", "decode_items", "generation_kwargs", "prefix_allowed_tokens_fn",
           "trie_logits_processor"]


def add_index_tokens(model, tokenizer, index, *, init: str = "mean", items=None):
    """Add ``index``'s code tokens to ``tokenizer`` and resize ``model``'s embeddings.

    Returns:
        ``LongTensor (vocab.n_tokens,)``: the tokenizer id of each of the index's vocab tokens.

    Raises:
        CodeFormatError: a code token does not end up as a single tokenizer id.
    """
    from .code_tokens import add_code_tokens

    return add_code_tokens(model, tokenizer, index.vocab, init=init, index=index, items=items)


def _tables(index, token_ids, tokenizer):
    from semid.gen.decoding.tables import TrieTables

    if tokenizer.eos_token_id is None:
        raise ParameterError("the tokenizer has no EOS token; constrained generation ends every code with EOS")
    return TrieTables.build(index.trie, index.vocab, token_ids=token_ids, eos_token_id=tokenizer.eos_token_id,
                            require_eos=True)


def trie_logits_processor(index, token_ids, tokenizer, *, prompt_length: int):
    """A ``LogitsProcessor`` that lets ``generate`` emit only complete codes of ``index`` (then EOS)."""
    from semid.gen.decoding.logits_processor import TrieLogitsProcessor

    return TrieLogitsProcessor(_tables(index, token_ids, tokenizer), prompt_length=prompt_length)


def generation_kwargs(index, tokenizer, *, num_beams: int = 10) -> dict:
    """The ``generate`` settings constrained decoding needs (beam search, summed log-probabilities)."""
    return {"do_sample": False, "num_beams": num_beams, "num_return_sequences": num_beams, "length_penalty": 0.0,
            "max_new_tokens": int(index.codes.shape[1]) + 1, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            "temperature": None, "top_p": None, "top_k": None}


def prefix_allowed_tokens_fn(index, token_ids, tokenizer, *, prompt_length: int) -> Callable:
    """``prefix_allowed_tokens_fn(batch_id, input_ids) -> list[int]`` over ``index``'s trie."""
    import numpy as np

    vocab = index.vocab
    to_code: dict[int, tuple[int, int]] = {}
    offsets = vocab.level_offsets()
    for level, size in enumerate(vocab.level_sizes):
        for code in range(size):
            to_code[int(token_ids[offsets[level] + code])] = (level, code)
    eos = int(tokenizer.eos_token_id)
    trie = index.trie

    def allowed(batch_id, input_ids) -> list[int]:
        generated = input_ids[prompt_length:].tolist()
        prefix = []
        for level, token in enumerate(generated):
            if token == eos:
                return [eos]
            mapped = to_code.get(int(token))
            if mapped is None or mapped[0] != level:
                return [eos]  # not a code: only a dead beam gets here
            prefix.append(mapped[1])
        node = trie.node(prefix)
        if node < 0:
            return [eos]
        codes, _ = trie.children(node)
        level = len(prefix)
        next_ids = [int(token_ids[offsets[level] + int(c)]) for c in np.asarray(codes)] if level < vocab.n_levels else []
        if prefix and trie.item_at(prefix) >= 0:
            next_ids.append(eos)
        return next_ids or [eos]

    return allowed


def decode_items(index, token_ids, tokenizer, generated) -> list[str | None]:
    """Item id of each generated row (``int64 (n, T)`` tokens after the prompt), ``None`` if not a code."""
    from semid.gen.decoding.logits_processor import sequences_to_items

    tables = _tables(index, token_ids, tokenizer)
    rows = sequences_to_items(tables, generated, prompt_length=0).tolist()
    return [index.item_ids[r] if r >= 0 else None for r in rows]
