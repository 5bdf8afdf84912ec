"""Exchange with other frameworks' semantic-ID files.

- ``lcrec``: the LC-Rec / LETTER index JSON, ``{"<item>": ["<a_1>", "<b_2>", ...]}``; token
  prefixes are read from the tokens (every item uses the same prefix at a level);
- ``grid``: snap-research/GRID's ``merged_predictions_tensor.pt``, ``int64 (L + 1, n_items)``
  with a collision row (0 unique, 1..k in a group), column ``i`` = item ``i``;
- ``recbole3`` / ``recbole3-raw``: RUCAIBox/RecBole3.0's ``item_sids.json``,
  ``{"<internal id>": [codes]}`` with globally offset codes (TIGER) or per-level codes (RPG, LC-Rec).

Positional formats (grid, recbole3) identify items by their position in the dataset's item
order; a round trip returns the identical codes.
- ``cornac-tiger`` / ``-letter`` / ``-rpg`` / ``-diffgrm``: PreferredAI/cornac's generative models
  keep their code table inside the model and read no code file: a fitted or saved one is read
  (:func:`read_cornac`), and an index goes to cornac as an untrained adapter of
  :mod:`semid.cornac_models`, pickled the way cornac saves models.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._io import open_text
from .errors import DataError
from .tokenizer import ItemTokenizer
from .trie import pad_codes

__all__ = ["CORNAC_MODELS", "EXPORT_FORMATS", "IMPORT_FORMATS", "codes_in_cornac_order", "export_cornac", "export_grid", "export_index", "export_lcrec",
           "export_recbole3", "parse_level_sizes", "read_cornac", "read_grid", "read_lcrec_index", "read_recbole3"]

logger = logging.getLogger(__name__)

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

    ``raw``: per-level codes in ``[0, K)`` (RPG, LC-Rec); otherwise globally offset codes (TIGER):
    level ``l`` is shifted by the declared sizes of the levels before it
    (``tokenizer.vocab.level_sizes``), as RecBole's RQ-VAE shifts by its codebook sizes.

    Raises:
        DataError: codes of different lengths.
    """
    codes = np.asarray(tokenizer.codes, dtype=np.int64)
    if (codes < 0).any():
        raise DataError("RecBole3.0 needs codes of one length; this index pads some (use a fixed-length scheme)")
    if not raw:
        sizes = np.asarray(tokenizer.vocab.level_sizes, dtype=np.int64)
        codes = codes + np.concatenate([[0], np.cumsum(sizes)[:-1]])[None, :]
    data = {str(i): [int(c) for c in row] for i, row in enumerate(codes)}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def parse_level_sizes(value: str | Sequence[int] | None) -> list[int] | None:
    """``"256"`` / ``"256,256,256"`` / a sequence into a list of positive sizes (``None`` stays ``None``)."""
    if value is None or value == "" or value == []:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        sizes = [int(str(v).strip()) for v in parts]
    except ValueError:
        raise DataError(f"level_sizes: expected positive integers separated by commas, got {value!r}") from None
    if any(s < 1 for s in sizes):
        raise DataError(f"level_sizes: expected positive integers, got {value!r}")
    return sizes


def _offset_starts(codes: np.ndarray, level_sizes: list[int] | None, path) -> np.ndarray:
    """Where each level of an offset (global-id) code table starts, shape ``(L,)``.

    RecBole shifts level ``l`` by the sum of the codebook sizes before it, and its "extend"
    collision level (``offset[-1] + k``, ``k >= 1``) by all of them. Given sizes are used as they
    are: one number is every level's size but the last's (unbounded, as a collision counter is),
    a list gives one per level (the last may be omitted). Otherwise the
    largest uniform codebook size ``K`` that puts every level inside ``[l K, (l + 1) K)`` (the last
    level only above ``l K``) is taken: it is the true size whenever some item uses code 0 at each
    level, which holds for every real index, and unlike the per-level minimum it survives unused
    codes. Without such a ``K`` each level starts at its smallest value (logged).
    """
    n_levels = codes.shape[1]
    lows, highs = codes.min(axis=0), codes.max(axis=0)
    if level_sizes is not None:
        # one size: every level but the last (RecBole's collision counter) has it; else one per level
        sizes = level_sizes * (n_levels - 1) if len(level_sizes) == 1 else level_sizes
        if len(sizes) < n_levels - 1 or len(sizes) > n_levels:
            raise DataError(f"{path}: {len(level_sizes)} level sizes given for {n_levels} levels")
        starts = np.concatenate([[0], np.cumsum(sizes)])[:n_levels]
        for level in range(n_levels):
            top = starts[level] + sizes[level] if level < len(sizes) else None
            bad = (codes[:, level] < starts[level]) | (False if top is None else codes[:, level] >= top)
            if bad.any():
                item = int(np.argmax(bad))
                raise DataError(f"{path}: item {item}: code {int(codes[item, level])} at level {level} is outside "
                                f"[{int(starts[level])}, {top if top is not None else 'inf'}) given level_sizes "
                                f"{level_sizes}")
        return starts.astype(np.int64)
    if n_levels == 1:
        return np.zeros(1, dtype=np.int64)
    valid = [k for k in range(int(highs[0]) + 1, int(lows[1]) + 1)
             if all(lows[l] >= l * k and highs[l] < (l + 1) * k for l in range(1, n_levels - 1))
             and lows[-1] >= (n_levels - 1) * k]
    if valid:
        return np.arange(n_levels, dtype=np.int64) * valid[-1]
    for level in range(1, n_levels):
        if lows[level] <= highs[level - 1]:
            raise DataError(f"{path}: level {level} overlaps level {level - 1}; not an offset (global-id) "
                            "file; read it with the raw format")
    logger.warning("%s: no uniform codebook size fits; each level starts at its smallest code "
                   "(give level_sizes to read the exact codes)", path)
    return lows.astype(np.int64)


def read_recbole3(path: str | os.PathLike[str], n_items: int, *, raw: bool,
                  level_sizes: list[int] | None = None) -> np.ndarray:
    """Codes ``int64 (n_items, L)`` of an ``item_sids.json`` (raw or offset form, see :func:`export_recbole3`).

    ``level_sizes``: the codebook sizes the offset file was shifted by (see :func:`_offset_starts`
    for what happens without them).

    Raises:
        DataError: malformed JSON, a missing or extra internal id, a code list that is not integers of
            one length, or an offset file whose levels overlap or leave the given sizes.
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
        if not isinstance(value, list) or not value or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
            raise DataError(f"{path}: item {i}: expected a list of non-negative integers, got {value!r:.80}")
        if rows and len(value) != len(rows[0]):
            raise DataError(f"{path}: item {i} has {len(value)} codes, item 0 has {len(rows[0])}")
        rows.append(value)
    codes = np.asarray(rows, dtype=np.int64)
    if not raw:
        codes = codes - _offset_starts(codes, level_sizes, path)[None, :]
    return codes


# -- cornac (PreferredAI/cornac) ------------------------------------------------------------------
def codes_in_cornac_order(codes: dict[str, Sequence[int]], iid_map: dict, total_items: int) -> np.ndarray:
    """``int64 (total_items, L)``: row ``j`` the code of the item cornac numbers ``j`` (``iid_map``: raw id -> j).

    Raises:
        DataError: an item cornac knows that the index has no code for, an internal id without a raw
            id, or codes of different lengths (cornac stores one fixed-width table).
    """
    table = np.full((total_items, max((len(c) for c in codes.values()), default=0)), -1, dtype=np.int64)
    filled = np.zeros(total_items, dtype=bool)
    for raw_id, j in iid_map.items():
        if not 0 <= int(j) < total_items:
            continue  # cornac maps more ids than this model was fitted on; they are never scored
        code = codes.get(str(raw_id))
        if code is None:
            raise DataError(f"cornac item {raw_id!r} (internal id {j}) has no code in the index; "
                            "the index must cover every item cornac knows")
        if len(code) != table.shape[1] or min(code) < 0:
            raise DataError(f"cornac needs codes of one length; item {raw_id!r} has {list(code)} "
                            "(use a fixed-length scheme)")
        table[int(j)] = code
        filled[int(j)] = True
    if not filled.all():
        raise DataError(f"cornac internal item id {int(np.argmin(filled))} has no raw item id in its iid_map")
    return table


def _cornac_dedup(codes: np.ndarray) -> np.ndarray:
    """cornac's collision level: the k-th item (0-based) sharing a code gets k."""
    seen: dict[tuple[int, ...], int] = {}
    out = np.zeros(len(codes), dtype=np.int64)
    for row, code in enumerate(map(tuple, codes.tolist())):
        out[row] = seen.get(code, 0)
        seen[code] = out[row] + 1
    return out


def read_cornac(model_or_path) -> dict[str, tuple[int, ...]]:
    """``{raw item id: code}`` of a fitted cornac TIGER, LETTER, RPG or DiffGRM, or of one saved with ``save``.

    TIGER's own collision level is dropped (semid applies its collision policy instead); loading a
    saved model (a .pkl or its folder) needs cornac installed, reading a model object does not.

    Raises:
        DataError: not a fitted cornac TIGER (no ``sid_table`` / ``iid_map``), or cornac missing.
    """
    model = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        try:
            from cornac.models import Recommender
        except ImportError:
            raise DataError(f"{model_or_path}: reading a saved cornac model needs cornac (pip install cornac)") from None
        try:
            model = Recommender.load(str(model_or_path))
        except Exception as exc:  # cornac / pickle raise many types for a damaged or foreign file
            raise DataError(f"{model_or_path}: not a saved cornac model ({type(exc).__name__}: {exc})") from None
    table, iid_map = getattr(model, "sid_table", None), getattr(model, "iid_map", None)
    if table is None or iid_map is None:
        raise DataError(f"{model_or_path!r:.80}: not a fitted cornac generative model (no sid_table / iid_map)")
    table = np.asarray(table, dtype=np.int64)
    if table.ndim != 2 or table.shape[1] < 1:
        raise DataError(f"cornac sid_table has shape {table.shape}; expected (items, levels)")
    if not len(iid_map):
        raise DataError(f"{model_or_path!r:.80}: the cornac model knows no items")
    codes = table
    lineage = {cls.__name__ for cls in type(model).__mro__}
    if "TIGER" in lineage and "LETTER" not in lineage:  # cornac's LETTER (a TIGER), RPG, DiffGRM keep no such level
        if not np.array_equal(table[:, -1], _cornac_dedup(table[:, :-1])):
            raise DataError(f"{model_or_path!r:.80}: the last sid_table column is not cornac TIGER's collision level")
        codes = table[:, :-1]
    return {str(raw): tuple(int(c) for c in codes[int(j)]) for raw, j in iid_map.items() if int(j) < len(codes)}


#: ``--format cornac-NAME`` -> the adapter class in :mod:`semid.cornac_models`.
CORNAC_MODELS = {"cornac-diffgrm": "SemidDiffGRM", "cornac-letter": "SemidLETTER", "cornac-rpg": "SemidRPG",
                 "cornac-tiger": "SemidTIGER"}


def export_cornac(tokenizer: ItemTokenizer, path: str | os.PathLike[str], fmt: str = "cornac-tiger") -> Path:
    """Write an untrained cornac model (:data:`CORNAC_MODELS`) over ``tokenizer``, pickled as cornac saves models.

    cornac reads no code file; this is the file it does read: ``cornac.models.Recommender.load(path,
    trainable=True)`` gives the model, which trains on the index's codes (set any of its parameters
    first, e.g. ``model.n_epochs = 10``). Loading needs semid and cornac installed.

    Raises:
        DataError: cornac is not installed, or the index's codes are not of one length.
    """
    import importlib
    import pickle

    try:
        adapter = getattr(importlib.import_module(".cornac_models", __package__), CORNAC_MODELS[fmt])
    except ImportError:
        raise DataError("exporting for cornac needs cornac (pip install cornac)") from None
    if (np.asarray(tokenizer.codes) < 0).any():
        raise DataError("cornac needs codes of one length; this index pads some (use a fixed-length scheme)")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        pickle.dump(adapter(tokenizer), handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return path


#: ``semid export --format NAME``.
EXPORT_FORMATS = (*sorted(CORNAC_MODELS), "grid", "lcrec", "recbole3", "recbole3-raw")
#: ``semid import-index --format NAME`` (cornac-*: a model saved with cornac's ``save``; any of them).
IMPORT_FORMATS = EXPORT_FORMATS


def export_index(tokenizer: ItemTokenizer, path: str | os.PathLike[str], fmt: str) -> Path:
    """Write ``tokenizer`` in format ``fmt`` (:data:`EXPORT_FORMATS`)."""
    from .errors import ParameterError

    if fmt == "lcrec":
        return export_lcrec(tokenizer, path)
    if fmt == "grid":
        return export_grid(tokenizer, path)
    if fmt in CORNAC_MODELS:
        return export_cornac(tokenizer, path, fmt)
    if fmt in ("recbole3", "recbole3-raw"):
        return export_recbole3(tokenizer, path, raw=fmt == "recbole3-raw")
    raise ParameterError(f"unknown export format {fmt!r}; formats: {', '.join(EXPORT_FORMATS)}")
