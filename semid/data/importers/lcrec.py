"""LC-Rec / LETTER preprocessed datasets: ``NAME.inter.json`` plus ``NAME.item.json``.

Layout of ``src`` (a directory; files may be ``.gz``):

- ``NAME.inter.json``: one JSON object ``{"user": [item, item, ...], ...}``,
  items oldest first (ints or strings). No timestamps or ratings.
- ``NAME.item.json``: ``{"item": {"title", "description", "brand",
  "categories"}, ...}``; ``categories`` is one comma-separated string (root
  first) or a list; ``description`` a string or a list of strings.
- ``NAME.item2id`` (optional): ``ASIN<TAB>item`` lines, as written by LC-Rec's
  preprocessing; only needed for ``remap="asin"``.

The ids are 0-based integers written as strings. Upstream numbered items by
first appearance while walking users, so the ids carry the same time-order leak
as P5's; they are kept by default (``remap="none"``) so results line up with the
papers' released indexes, and can be replaced with ``remap="random"`` or, given
``NAME.item2id``, ``remap="asin"``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..._io import open_text, resolve_input
from ...errors import DataError
from ..dataset import Dataset, ItemTable, Sequences
from ._common import (
    add_items_without_text,
    clean_text,
    find_one,
    id_sort_key,
    load_json_object,
    parse_categories,
    parse_price,
    progress,
)
from ._remap import remap_item_ids

__all__ = ["import_lcrec"]

logger = logging.getLogger(__name__)

_TEXT_FIELDS = ("title", "brand", "description")


def _item_id(value: Any, *, where: str, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: field {field!r} holds {value!r}; expected an item id (int or non-empty string)")
    return str(value).strip()


def _read_interactions(path: Path) -> tuple[list[str], list[list[str]]]:
    raw = load_json_object(path, "user sequences")
    users: list[str] = []
    sequences: list[list[str]] = []
    for user, items in progress(raw.items(), f"reading {path.name}", total=len(raw)):
        where = f"{path}: user {user!r}"
        if not isinstance(items, list):
            raise DataError(f"{where}: expected a list of item ids, got {type(items).__name__}")
        if not items:
            raise DataError(f"{where}: empty item list; expected at least one interaction")
        users.append(user)
        sequences.append([_item_id(i, where=where, field="items") for i in items])
    return users, sequences


def _read_items(path: Path) -> dict[str, dict[str, Any]]:
    raw = load_json_object(path, "item features")
    records: dict[str, dict[str, Any]] = {}
    for item, features in raw.items():
        if not isinstance(features, dict):
            raise DataError(f"{path}: item {item!r}: expected an object of features, got {type(features).__name__}")
        record: dict[str, Any] = {}
        for key, value in features.items():
            if key in _TEXT_FIELDS:
                value = clean_text(value)
            elif key == "categories":
                value = parse_categories(value, separator=",")
            elif key == "price":
                value = parse_price(value)
            if value is not None:
                record[key] = value
        records[item] = record
    return records


def _read_item2id(path: Path) -> dict[str, str]:
    """Item id -> ASIN from LC-Rec's ``ASIN<TAB>id`` remap file."""
    asins: dict[str, str] = {}
    with open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != 2 or not parts[0] or not parts[1]:
                raise DataError(f"{path}:{line_number}: expected 'ASIN<TAB>item_id', got {line.rstrip()!r:.80}")
            asin, item = parts
            if item in asins:
                raise DataError(f"{path}:{line_number}: duplicate item id {item!r}")
            asins[item] = asin
    return asins


def import_lcrec(
    src: Path, *, seed: int = 0, remap: str = "none", name: str | None = None
) -> Dataset:
    """Import an LC-Rec / LETTER directory (see the module docstring for the layout).

    Args:
        src: the directory.
        seed: seed of ``remap="random"``.
        remap: ``"none"`` (default: keep the upstream ids), ``"random"``, or
            ``"asin"`` (needs ``NAME.item2id``).
        name: dataset name; defaults to ``NAME``.

    Items in ``NAME.item.json`` never interacted with are kept; items in the
    sequences but not in ``NAME.item.json`` are kept without text (warning).

    Raises:
        DataError: missing files, malformed JSON (file and line), duplicate ids,
            empty sequences, non-id values.
    """
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"source directory not found: {src}")
    inter_path = find_one(src, ["*.inter.json"], "interaction file (NAME.inter.json)")
    stem = inter_path.name.split(".inter.json")[0]
    item_path = resolve_input(src / f"{stem}.item.json")
    remap_item_ids([], mode=remap, seed=seed)  # validate the mode before reading

    users, sequences = _read_interactions(inter_path)
    records = _read_items(item_path)
    add_items_without_text(records, (i for s in sequences for i in s), metadata=item_path.name, logger=logger)
    originals = sorted(records, key=id_sort_key)

    asins: dict[str, str] = {}
    map_path = None
    if remap == "asin":
        map_path = resolve_input(src / f"{stem}.item2id")
        asins = _read_item2id(map_path)
    mapping = remap_item_ids(originals, mode=remap, seed=seed, natural_keys=asins, where=str(map_path or item_path))
    if remap == "asin":
        for original in originals:
            records[original].setdefault("asin", mapping[original])
    # Row order follows the new ids, so it carries no more order than they do.
    if remap == "none":
        new_ids = originals
    else:
        new_ids = sorted(mapping.values(), key=(lambda i: i) if remap == "asin" else int)
    original_of = {new: original for original, new in mapping.items()}

    files = [p.name for p in (inter_path, item_path, map_path) if p is not None]
    source: dict[str, Any] = {"format": "lcrec", "path": str(src.resolve()), "files": files, "remap": remap}
    if remap == "random":
        source["seed"] = seed
    return Dataset(
        name=name or stem,
        items=ItemTable(({"item_id": new, **records[original_of[new]]} for new in new_ids), source=str(item_path)),
        sequences=Sequences(users, [[mapping[i] for i in seq] for seq in sequences]),
        source=source,
        id_map=None if remap == "none" else mapping,
    )
