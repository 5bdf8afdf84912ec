"""Exchange with other frameworks: the LC-Rec / LETTER index JSON.

That format maps each item id to its token list:
``{"0": ["<a_1>", "<b_2>", "<c_3>", "<d_0>"], ...}``. Token prefixes are read
from the tokens themselves; every item must use the same prefix at a level.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from ._io import open_text
from .errors import DataError
from .tokenizer import ItemTokenizer
from .trie import pad_codes

__all__ = ["export_lcrec", "read_lcrec_index"]

_TOKEN = re.compile(r"<([A-Za-z]+)_(\d+)>")


def export_lcrec(tokenizer: ItemTokenizer, path: str | os.PathLike[str]) -> Path:
    """Write ``{item_id: [token, ...]}`` (sorted keys) atomically; returns the path."""
    path = Path(path)
    data = {item: tokenizer.vocab.render_tokens(tokenizer.encode(item)) for item in tokenizer.item_ids}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_lcrec_index(path: str | os.PathLike[str]) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """Parse an LC-Rec index file into ``({item_id: code}, level_prefixes)``.

    Raises:
        DataError: unreadable JSON, a value that is not a token list, a token that
            does not look like ``<x_12>``, or prefixes inconsistent across items.
    """
    try:
        with open_text(path) as handle:
            raw = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    if not isinstance(raw, dict) or not raw:
        raise DataError(f"{path}: expected a non-empty JSON object mapping item ids to token lists")
    prefixes: list[str] = []
    codes: dict[str, tuple[int, ...]] = {}
    for item, tokens in raw.items():
        if isinstance(tokens, str):
            tokens = [m.group(0) for m in _TOKEN.finditer(tokens)] or [tokens]
        if not isinstance(tokens, list) or not tokens:
            raise DataError(f"{path}: item {item!r}: expected a list of tokens, got {tokens!r:.80}")
        code = []
        for level, token in enumerate(tokens):
            match = _TOKEN.fullmatch(str(token))
            if not match:
                raise DataError(f"{path}: item {item!r}: token {token!r} is not of the form '<a_12>'")
            prefix, index = match.group(1), int(match.group(2))
            if level == len(prefixes):
                prefixes.append(prefix)
            elif prefixes[level] != prefix:
                raise DataError(
                    f"{path}: item {item!r}: token {token!r} at level {level} has prefix {prefix!r}, "
                    f"other items use {prefixes[level]!r}"
                )
            code.append(index)
        codes[str(item)] = tuple(code)
    return codes, prefixes


def codes_matrix(codes: dict[str, tuple[int, ...]], item_ids: list[str]) -> np.ndarray:
    """Rows of ``codes`` in ``item_ids`` order as an ``int32`` -1 padded matrix."""
    return pad_codes([codes[i] for i in item_ids])
