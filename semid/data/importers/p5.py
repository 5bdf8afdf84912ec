"""P5 / S3-Rec sequential files (``sequential_data.txt`` or ``Beauty.txt``) plus item metadata.

Layout of ``src`` (a directory; every file may be ``.gz``):

- the sequences: ``sequential_data.txt``, or else the single other ``*.txt``
  (``Beauty.txt``; files named ``*sample*`` are P5/S3-Rec negative samples and
  are ignored). One user per line, ``user item item ...`` separated by
  whitespace, 1-based integer ids, items oldest first. No timestamps or ratings.
- item metadata, one of:

  - ``items.jsonl``: one object per item with ``item_id`` (the sequence id, an
    int) and ``asin``, ``title``, ``brand``, ``categories`` (list, root first),
    ``price``, ``sales_type``, ``sales_rank`` ... (any further field is kept);
  - P5's ``datamaps.json`` (``id2item``: sequence id -> ASIN), when no
    ``items.jsonl`` exists; items then carry only their ASIN.

  ``datamaps.json``'s ``id2user``, when present, gives users their original
  (Amazon) ids; it is also cross-checked against ``items.jsonl``'s ASINs.

The sequence ids were assigned by first appearance, so they leak time order;
they are replaced according to ``remap`` (see :mod:`._remap`), and the mapping
is kept in :attr:`Dataset.id_map`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..._io import iter_jsonl, open_text, resolve_input
from ...errors import DataError
from ..dataset import Dataset, ItemTable, Sequences
from ._common import (
    add_items_without_text,
    clean_text,
    id_sort_key,
    load_json_object,
    parse_categories,
    parse_price,
    progress,
)
from ._remap import remap_item_ids

__all__ = ["import_p5"]

logger = logging.getLogger(__name__)

_TEXT_FIELDS = ("title", "brand", "description")


def _optional(src: Path, name: str) -> Path | None:
    try:
        return resolve_input(src / name)
    except DataError:
        return None


def _find_sequences(src: Path) -> Path:
    preferred = _optional(src, "sequential_data.txt")
    if preferred is not None:
        return preferred
    candidates = [
        p for p in sorted(src.glob("*.txt")) + sorted(src.glob("*.txt.gz"))
        if "sample" not in p.name.lower()
    ]
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise DataError(
            f"{src}: expected sequential_data.txt or exactly one other *.txt sequence file "
            f"(e.g. Beauty.txt), found {found}"
        )
    return candidates[0]


def _is_id(token: str) -> bool:
    return token.isascii() and token.isdigit()


def _read_sequences(path: Path) -> tuple[list[str], list[list[str]]]:
    users: list[str] = []
    sequences: list[list[str]] = []
    first_line: dict[str, int] = {}
    with open_text(path) as handle:
        for line_number, line in enumerate(progress(handle, f"reading {path.name}"), start=1):
            tokens = line.split()
            if not tokens:
                continue
            user, items = tokens[0], tokens[1:]
            if not _is_id(user):
                raise DataError(f"{path}:{line_number}: field 'user' must be an integer id, got {user!r}")
            for position, item in enumerate(items, start=2):
                if not _is_id(item):
                    raise DataError(
                        f"{path}:{line_number}: token {position} (an item id) must be an integer, got {item!r}"
                    )
            if not items:
                raise DataError(
                    f"{path}:{line_number}: user {user!r} has no items; expected 'user item item ...' "
                    "with at least one item"
                )
            user = str(int(user))
            if user in first_line:
                raise DataError(f"{path}:{line_number}: duplicate user {user!r} (first on line {first_line[user]})")
            first_line[user] = line_number
            users.append(str(int(user)))  # "007" and "7" name the same id
            sequences.append([str(int(item)) for item in items])
    return users, sequences


def _record_from_items_jsonl(raw: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "item_id":
            continue
        if key in _TEXT_FIELDS:
            value = clean_text(value)
        elif key == "categories":
            value = parse_categories(value)
        elif key == "price":
            value = parse_price(value)
        if value is not None:
            record[key] = value
    return record


def _read_items_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    """Sequence id (as a string) -> item fields without ``item_id``."""
    records: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for line, raw in progress(iter_jsonl(path), f"reading {path.name}"):
        item = raw.get("item_id")
        item_text = str(item) if isinstance(item, (int, str)) and not isinstance(item, bool) else ""
        if not _is_id(item_text):
            raise DataError(
                f"{path}:{line}: field 'item_id' must be the integer sequence id of the item, got {item!r}"
            )
        item_text = str(int(item_text))
        if item_text in first_line:
            raise DataError(
                f"{path}:{line}: duplicate item_id {item!r} (first on line {first_line[item_text]})"
            )
        first_line[item_text] = line
        records[item_text] = _record_from_items_jsonl(raw)
    return records


def _string_map(datamaps: dict[str, Any], key: str, path: Path) -> dict[str, str] | None:
    value = datamaps.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise DataError(f"{path}: field {key!r} must map ids to strings, got {type(value).__name__}")
    return {str(int(k)) if _is_id(k) else k: v for k, v in value.items()}


def import_p5(
    src: Path, *, seed: int = 0, remap: str = "asin", name: str | None = None
) -> Dataset:
    """Import a P5 / S3-Rec directory (see the module docstring for the layout).

    Args:
        src: the directory.
        seed: seed of ``remap="random"``.
        remap: ``"asin"`` (default), ``"random"`` or ``"none"``.
        name: dataset name; defaults to the sequence file's stem (``Beauty``) or
            the directory name for ``sequential_data.txt``.

    Items listed in the metadata but never interacted with are kept. Items in
    the sequences but not in the metadata are kept without text (warning),
    except with ``remap="asin"``, which needs every item's ASIN (DataError).

    Raises:
        DataError: missing files, malformed lines (file, line, field, value),
            duplicate users or items, inconsistent ``datamaps.json``.
    """
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"source directory not found: {src}")
    seq_path = _find_sequences(src)
    items_path = _optional(src, "items.jsonl")
    maps_path = _optional(src, "datamaps.json")
    if items_path is None and maps_path is None and remap == "asin":
        raise DataError(
            f"{src}: no item metadata found (looked for items.jsonl and datamaps.json); "
            "remap='asin' needs each item's ASIN (use remap='random' or 'none' to import ids only)"
        )
    # Validate the mode before the slow reading.
    remap_item_ids([], mode=remap, seed=seed)

    users, sequences = _read_sequences(seq_path)
    id2user = id2item = None
    if maps_path is not None:
        datamaps = load_json_object(maps_path, "P5 id maps")
        id2user = _string_map(datamaps, "id2user", maps_path)
        id2item = _string_map(datamaps, "id2item", maps_path)

    if items_path is not None:
        metadata = _read_items_jsonl(items_path)
        meta_name = items_path.name
        if id2item is not None:
            for item, record in metadata.items():
                if item in id2item and record.get("asin") not in (None, id2item[item]):
                    raise DataError(
                        f"{items_path}: item {item} has field 'asin' {record.get('asin')!r} but "
                        f"{maps_path.name} id2item says {id2item[item]!r}; the files do not belong together"
                    )
                if "asin" not in record and item in id2item:
                    record["asin"] = id2item[item]
    elif id2item is not None:
        metadata = {item: {"asin": asin} for item, asin in id2item.items()}
        meta_name = maps_path.name
    else:
        metadata, meta_name = {}, "the metadata (none found)"
        logger.warning("%s: no items.jsonl or datamaps.json; items will have no text", src)

    if id2user is not None:
        missing_users = [u for u in users if u not in id2user]
        if missing_users:
            raise DataError(
                f"{maps_path}: id2user lacks {len(missing_users)} user(s) of {seq_path.name} "
                f"(e.g. {missing_users[0]!r}); the files do not belong together"
            )
        users = [id2user[u] for u in users]
        if len(set(users)) != len(users):
            raise DataError(f"{maps_path}: id2user maps two users of {seq_path.name} to the same original id")

    if remap == "asin":  # checked before anything is added without text
        missing = sorted({i for s in sequences for i in s} - metadata.keys(), key=id_sort_key)
        if missing:
            raise DataError(
                f"{seq_path}: {len(missing)} item id(s) are not in {meta_name} (e.g. {missing[0]!r}), so they "
                "have no ASIN for remap='asin'; add them to the metadata or use remap='random'"
            )

    by_original = {item: dict(record) for item, record in metadata.items()}
    add_items_without_text(
        by_original, (i for s in sequences for i in s), metadata=meta_name, logger=logger
    )
    for item, record in by_original.items():
        record.pop("item_id", None)
    originals = sorted(by_original, key=id_sort_key)
    asins = {item: str(by_original[item]["asin"]) for item in originals if by_original[item].get("asin")}
    mapping = remap_item_ids(
        originals, mode=remap, seed=seed, natural_keys=asins, where=str(items_path or maps_path or src)
    )

    new_ids = sorted(mapping.values(), key=(lambda i: i) if remap == "asin" else int)
    original_of = {new: original for original, new in mapping.items()}
    records = [{"item_id": new, **by_original[original_of[new]]} for new in new_ids]
    remapped = [[mapping[i] for i in seq] for seq in sequences]

    files = [p.name for p in (seq_path, items_path, maps_path) if p is not None]
    source: dict[str, Any] = {"format": "p5", "path": str(src.resolve()), "files": files, "remap": remap}
    if remap == "random":
        source["seed"] = seed
    dataset_name = name or (src.resolve().name if seq_path.name.startswith("sequential_data") else seq_path.name.split(".")[0])
    return Dataset(
        name=dataset_name,
        items=ItemTable(records, source=str(items_path or maps_path or seq_path)),
        sequences=Sequences(users, remapped),
        source=source,
        id_map=None if remap == "none" else {original: mapping[original] for original in originals},
    )
