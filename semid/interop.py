"""Exchange with other frameworks' semantic-ID files.

- ``lcrec``: the LC-Rec / LETTER index JSON, ``{"<item>": ["<a_1>", "<b_2>", ...]}``; token
  prefixes are read from the tokens (every item uses the same prefix at a level);
- ``grid``: snap-research/GRID's ``merged_predictions_tensor.pt``, ``int64 (L + 1, n_items)``
  with a collision row (0 unique, 1..k in a group), column ``i`` = item ``i``;
- ``recbole3`` / ``recbole3-raw``: RUCAIBox/RecBole3.0's ``item_sids.json``,
  ``{"<internal id>": [codes]}`` with globally offset codes (TIGER) or per-level codes (RPG, LC-Rec).

Positional formats (grid, recbole3) identify items by their position in the dataset's item
order; a round trip returns the identical codes. cornac's TIGER keeps its code table inside
the pickled model and loads no code file, so there is nothing to bridge to without changing it.
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

__all__ = ["EXPORT_FORMATS", "IMPORT_FORMATS", "export_grid", "export_index", "export_lcrec", "export_recbole3",
           "read_grid", "read_lcrec_index", "read_recbole3"]

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


# -- GRID (snap-research/GRID) ---------------------------------------------------------------
def _grid_dedup(codes: np.ndarray) -> np.ndarray:
    """GRID's collision column: 0 for a unique code, 1..k over the k members of a group, in row order."""
    out = np.zeros(len(codes), dtype=np.int64)
    groups: dict[tuple[int, ...], list[int]] = {}
    for row, code in enumerate(map(tuple, codes.tolist())):
        groups.setdefault(code, []).append(row)
    for rows in groups.values():
        if len(rows) > 1:
            out[rows] = np.arange(1, len(rows) + 1)
    return out


def export_grid(tokenizer: ItemTokenizer, path: str | os.PathLike[str]) -> Path:
    """Write GRID's ``merged_predictions_tensor.pt``: ``int64 (L + 1, n_items)``, column ``i`` = item ``i``.

    Rows are the code levels then GRID's collision column (all 0: semid codes are unique). GRID has
    no id-mapping file: column ``i`` is the item at row ``i`` of the index (``item_ids.txt``), so the
    item order is written beside it as ``<path>.item_ids.txt``.

    Raises:
        DataError: codes of different lengths (GRID stores one fixed-width table).
    """
    import torch

    codes = np.asarray(tokenizer.codes, dtype=np.int64)
    if (codes < 0).any():
        raise DataError("GRID needs codes of one length; this index pads some (use a fixed-length scheme)")
    table = np.concatenate([codes, _grid_dedup(codes)[:, None]], axis=1).T.copy()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(torch.from_numpy(table), tmp)
    os.replace(tmp, path)
    order = path.with_name(path.name + ".item_ids.txt")
    order.write_text("".join(i + "\n" for i in tokenizer.item_ids), encoding="utf-8")
    return path


def read_grid(path: str | os.PathLike[str], n_items: int) -> np.ndarray:
    """Codes ``int64 (n_items, L)`` of a GRID semantic-ID tensor (its collision row dropped when it is one).

    Raises:
        DataError: unreadable, not a 2-d integer tensor, or not one column per item.
    """
    import torch

    try:
        table = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        raise DataError(f"{path}: not a GRID semantic-ID tensor ({type(exc).__name__}: {exc})") from None
    if not torch.is_tensor(table) or table.dim() != 2:
        raise DataError(f"{path}: expected a 2-d tensor (levels x items), got {type(table).__name__}")
    if table.is_floating_point():
        if not bool((table == table.round()).all()):
            raise DataError(f"{path}: the code tensor holds non-integer values")
    table = table.long().numpy()
    if table.shape[1] != n_items:
        if table.shape[0] == n_items:
            raise DataError(f"{path}: shape {tuple(table.shape)} is items x levels; GRID stores levels x items "
                            "(the tensor after GRID's transpose step)")
        raise DataError(f"{path}: {table.shape[1]} item columns, the dataset has {n_items} items")
    codes = table.T
    if codes.shape[1] > 1 and np.array_equal(codes[:, -1], _grid_dedup(codes[:, :-1])):
        codes = codes[:, :-1]  # GRID's own collision column; semid applies its collision policy instead
    if (codes < 0).any():
        row = int(np.argwhere(codes < 0)[0][0])
        raise DataError(f"{path}: item column {row} holds a negative code")
    return codes


# -- RecBole3.0 (RUCAIBox/RecBole3.0) ------------------------------------------------------------
def export_recbole3(tokenizer: ItemTokenizer, path: str | os.PathLike[str], *, raw: bool) -> Path:
    """Write RecBole3.0's ``item_sids.json``: ``{"<internal id>": [code, ...]}``, ids 0..n-1 in index order.

    ``raw``: per-level codes in ``[0, K)`` (RPG, LC-Rec); otherwise globally offset codes (each level
    shifted by the sizes of the levels before it, as RecBole's RQ-VAE writes them; TIGER).

    Raises:
        DataError: codes of different lengths.
    """
    codes = np.asarray(tokenizer.codes, dtype=np.int64)
    if (codes < 0).any():
        raise DataError("RecBole3.0 needs codes of one length; this index pads some (use a fixed-length scheme)")
    if not raw:
        sizes = codes.max(axis=0) + 1
        codes = codes + np.concatenate([[0], np.cumsum(sizes)[:-1]])[None, :]
    data = {str(i): [int(c) for c in row] for i, row in enumerate(codes)}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_recbole3(path: str | os.PathLike[str], n_items: int, *, raw: bool) -> np.ndarray:
    """Codes ``int64 (n_items, L)`` of an ``item_sids.json`` (raw or offset form, see :func:`export_recbole3`).

    Raises:
        DataError: malformed JSON, a missing or extra internal id, a code list that is not integers of
            one length, or an offset file whose levels overlap.
    """
    try:
        with open_text(path) as handle:
            raw_data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    if not isinstance(raw_data, dict):
        raise DataError(f"{path}: expected a JSON object mapping internal item ids to code lists")
    missing = [i for i in range(n_items) if str(i) not in raw_data]
    if missing:
        raise DataError(f"{path}: internal item id {missing[0]} has no code ({len(missing)} missing of {n_items})")
    extra = sorted(set(raw_data) - {str(i) for i in range(n_items)})
    if extra:
        raise DataError(f"{path}: key {extra[0]!r} is not an internal item id 0..{n_items - 1}")
    rows = []
    for i in range(n_items):
        value = raw_data[str(i)]
        if not isinstance(value, list) or not value or not all(isinstance(v, int) and v >= 0 for v in value):
            raise DataError(f"{path}: item {i}: expected a list of non-negative integers, got {value!r:.80}")
        if rows and len(value) != len(rows[0]):
            raise DataError(f"{path}: item {i} has {len(value)} codes, item 0 has {len(rows[0])}")
        rows.append(value)
    codes = np.asarray(rows, dtype=np.int64)
    if not raw:
        offsets = codes.min(axis=0)
        for level in range(1, codes.shape[1]):
            if offsets[level] <= codes[:, level - 1].max():
                raise DataError(f"{path}: level {level} overlaps level {level - 1}; not an offset (global-id) "
                                "file; read it with the raw format")
        starts = np.concatenate([[0], codes.max(axis=0)[:-1] + 1])
        codes = codes - starts[None, :]
    return codes


#: ``semid export --format NAME``.
EXPORT_FORMATS = ("grid", "lcrec", "recbole3", "recbole3-raw")
#: ``semid import-index --format NAME``.
IMPORT_FORMATS = EXPORT_FORMATS


def export_index(tokenizer: ItemTokenizer, path: str | os.PathLike[str], fmt: str) -> Path:
    """Write ``tokenizer`` in format ``fmt`` (:data:`EXPORT_FORMATS`)."""
    from .errors import ParameterError

    if fmt == "lcrec":
        return export_lcrec(tokenizer, path)
    if fmt == "grid":
        return export_grid(tokenizer, path)
    if fmt in ("recbole3", "recbole3-raw"):
        return export_recbole3(tokenizer, path, raw=fmt == "recbole3-raw")
    raise ParameterError(f"unknown export format {fmt!r}; formats: {', '.join(EXPORT_FORMATS)}")
