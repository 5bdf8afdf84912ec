"""Adding an index's code tokens (``<a_12>``) to a language model's tokenizer.

Each code token must become exactly one tokenizer id, otherwise constrained
decoding over the code trie cannot map trie steps to tokenizer ids. New rows of
the input embedding (and of the output layer when it is not tied) are
initialised from existing embeddings instead of random noise, so the first
training steps do not have to undo a bad start:

- ``"mean"``: every new token gets the mean of all existing embeddings;
- ``"text"``: each token ``(level, index)`` gets the mean embedding of the title
  tokens of the items whose code holds it at that level (the mean of all
  embeddings for tokens that no titled item uses).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from semid.errors import CodeFormatError, ParameterError

__all__ = ["INIT_METHODS", "add_code_tokens", "code_token_ids"]

logger = logging.getLogger(__name__)

INIT_METHODS = ("mean", "text")


def code_token_ids(tokenizer, tokens: Sequence[str]):
    """``LongTensor (len(tokens),)``: the tokenizer id of each code token.

    Also checks that a rendered code (tokens written back to back) tokenises to
    the same ids, since prompts and targets hold whole codes.

    Raises:
        CodeFormatError: a token is split into several ids (or none), or the
            concatenation of tokens does not tokenise token by token.
    """
    import torch

    ids = []
    for token in tokens:
        pieces = tokenizer.encode(token, add_special_tokens=False)
        if len(pieces) != 1:
            raise CodeFormatError(
                f"code token {token!r} is split by the tokenizer into {len(pieces)} ids {pieces[:8]}; "
                "each code token must be exactly one id (add it with tokenizer.add_tokens first)"
            )
        ids.append(pieces[0])
    sample = list(tokens[:4])
    joined = tokenizer.encode("".join(sample), add_special_tokens=False)
    if joined != ids[: len(sample)]:
        raise CodeFormatError(
            f"code tokens {sample} written together tokenise to {joined}, not {ids[: len(sample)]}"
        )
    return torch.tensor(ids, dtype=torch.long)


def add_code_tokens(model, tokenizer, vocab, *, init: str = "mean", index=None, items=None):
    """Add ``vocab.tokens()`` to ``tokenizer``, resize ``model`` and initialise new rows.

    Args:
        model: a transformers causal LM (modified in place).
        tokenizer: its tokenizer (modified in place).
        vocab: the index's :class:`semid.CodeVocab`.
        init: ``"mean"`` or ``"text"`` (then ``index`` and ``items`` are needed).
        index: fitted :class:`semid.ItemTokenizer`, for ``init="text"``.
        items: the dataset's :class:`semid.ItemTable`, for ``init="text"``.

    Returns:
        ``LongTensor (vocab.n_tokens,)``: tokenizer id of each vocab token id.

    Raises:
        ParameterError: unknown ``init``.
        CodeFormatError: a code token is not a single tokenizer id after adding.
    """
    import torch

    if init not in INIT_METHODS:
        raise ParameterError(f"unknown embedding init {init!r}; valid: {', '.join(INIT_METHODS)}")
    tokens = vocab.tokens()
    existing = set(tokenizer.get_vocab())
    n_added = tokenizer.add_tokens([t for t in tokens if t not in existing], special_tokens=False)
    mapping = code_token_ids(tokenizer, tokens)
    old_rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > old_rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    new_ids = mapping[mapping >= old_rows]
    logger.info("added %d code tokens (%d new embedding rows, init=%s)", n_added, len(new_ids), init)
    if len(new_ids) == 0:
        return mapping
    with torch.no_grad():
        embed = model.get_input_embeddings().weight
        mean = embed[:old_rows].mean(dim=0)
        values = mean.expand(len(tokens), -1).clone()
        if init == "text":
            values = _text_init(tokenizer, embed[:old_rows], vocab, index, items, values)
        fresh = mapping >= old_rows
        embed[mapping[fresh]] = values[fresh].to(embed.dtype)
        output = model.get_output_embeddings()
        if output is not None and output.weight.data_ptr() != embed.data_ptr():
            out_mean = output.weight[:old_rows].mean(dim=0)
            output.weight[mapping[fresh]] = out_mean.to(output.weight.dtype)
            if getattr(output, "bias", None) is not None:
                output.bias[mapping[fresh]] = 0.0
    return mapping


def _text_init(tokenizer, embed, vocab, index, items, values):
    """Mean title-token embedding per code token (see the module docstring)."""
    import torch

    if index is None or items is None:
        raise ParameterError("init='text' needs the index and the item table")
    sums = torch.zeros_like(values)
    counts = torch.zeros(len(values))
    for row, item_id in enumerate(index.item_ids):
        title = items[item_id].get("title") if item_id in items else None
        if not title:
            continue
        ids = tokenizer.encode(str(title), add_special_tokens=False)[:32]
        if not ids:
            continue
        vector = embed[torch.tensor(ids)].mean(dim=0)
        for token_id in vocab.token_ids([int(c) for c in index.codes[row] if c >= 0]):
            sums[token_id] += vector
            counts[token_id] += 1
    used = counts > 0
    values[used] = sums[used] / counts[used, None]
    return values
