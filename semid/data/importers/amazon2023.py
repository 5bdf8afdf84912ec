"""Amazon Reviews 2023 benchmark splits (``*.train/valid/test.csv``) plus metadata.

Split files have the header ``user_id,parent_asin,rating,timestamp,history``
(timestamps in milliseconds); a user's sequence is their train rows in time
order followed by their valid and test item. Metadata is either the official
``meta_*.jsonl`` (``parent_asin``, ``title``, ``description`` list, ``price``,
``details`` dict, ``categories`` list, ``store``) or a CSV with the columns
``title, description, price, details, parent_asin`` where ``details`` and
``description`` are Python-literal strings. Item ids are parent ASINs, which do
not leak time order, so no remapping is needed.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from ..._io import iter_jsonl, open_text
from ...errors import DataError
from ..dataset import Dataset, ItemTable, Sequences
from ._common import (
    add_items_without_text,
    clean_text,
    find_one,
    parse_categories,
    parse_price,
    parse_python_literal,
)

__all__ = ["import_amazon2023"]

logger = logging.getLogger(__name__)

SPLIT_COLUMNS = ("user_id", "parent_asin", "rating", "timestamp")


def _read_split(path: Path) -> list[tuple[str, str, float, float]]:
    rows = []
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in SPLIT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}:1: header lacks column(s) {missing}; expected {','.join(SPLIT_COLUMNS)},history")
        for line, row in enumerate(reader, start=2):
            try:
                rating, stamp = float(row["rating"]), float(row["timestamp"])
            except (TypeError, ValueError):
                raise DataError(
                    f"{path}:{line}: fields 'rating'/'timestamp' must be numbers, got "
                    f"{row.get('rating')!r}/{row.get('timestamp')!r}"
                ) from None
            if not row["user_id"] or not row["parent_asin"]:
                raise DataError(f"{path}:{line}: empty 'user_id' or 'parent_asin'")
            rows.append((row["user_id"], row["parent_asin"], rating, stamp))
    return rows


def _item_from_meta(raw: dict[str, Any], where: str) -> dict[str, Any]:
    details = raw.get("details")
    if isinstance(details, str) and details.strip():
        details = parse_python_literal(details, where=f"{where}: field 'details'") if details.strip().startswith("{") else None
    details = details if isinstance(details, dict) else {}
    description = raw.get("description")
    if isinstance(description, str) and description.strip().startswith("["):
        description = parse_python_literal(description, where=f"{where}: field 'description'")
    record: dict[str, Any] = {"item_id": str(raw["parent_asin"])}
    title = clean_text(raw.get("title"))
    brand = clean_text(details.get("Brand") or raw.get("store"))
    categories = parse_categories(raw.get("categories") or None)
    if categories is None and raw.get("main_category"):
        categories = [str(raw["main_category"])]
    fields = {
        "title": title,
        "brand": brand,
        "categories": categories,
        "description": clean_text(description),
        "price": parse_price(raw.get("price")),
    }
    record.update({k: v for k, v in fields.items() if v is not None})
    return record


def _check_new(items: dict[str, Any], asin: str, path: Path, line: int) -> None:
    if asin in items:
        raise DataError(f"{path}:{line}: duplicate parent_asin {asin!r}; expected one metadata record per item")


def _read_meta(path: Path) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    if ".jsonl" in path.name:
        for line, raw in iter_jsonl(path):
            if not raw.get("parent_asin"):
                raise DataError(f"{path}:{line}: record lacks field 'parent_asin'")
            _check_new(items, str(raw["parent_asin"]), path, line)
            items[str(raw["parent_asin"])] = _item_from_meta(raw, f"{path}:{line}")
        return items
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        if "parent_asin" not in (reader.fieldnames or []):
            raise DataError(f"{path}:1: header lacks column 'parent_asin'")
        for line, raw in enumerate(reader, start=2):
            if not raw.get("parent_asin"):
                raise DataError(f"{path}:{line}: empty field 'parent_asin'")
            _check_new(items, raw["parent_asin"], path, line)
            items[raw["parent_asin"]] = _item_from_meta(raw, f"{path}:{line}")
    return items


def import_amazon2023(src: Path, *, seed: int = 0, name: str | None = None) -> Dataset:
    """Import a directory holding ``NAME.train.csv``, ``NAME.valid.csv``, ``NAME.test.csv``
    and one metadata file (``meta*.jsonl`` or ``*meta*.csv``).

    Items that appear in interactions but not in the metadata are kept with no
    text fields (and logged); metadata items never interacted with are dropped.
    """
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"source directory not found: {src}")
    train = find_one(src, ["*.train.csv"], "train split (*.train.csv)")
    valid = find_one(src, ["*.valid.csv"], "validation split (*.valid.csv)")
    test = find_one(src, ["*.test.csv"], "test split (*.test.csv)")
    meta_path = find_one(src, ["meta*.jsonl", "*meta*.csv"], "metadata file (meta*.jsonl or *meta*.csv)")
    meta = _read_meta(meta_path)

    per_user: dict[str, list[tuple[float, int, str, float]]] = {}
    order = 0
    for path in (train, valid, test):
        for user, item, rating, stamp in _read_split(path):
            per_user.setdefault(user, []).append((stamp, order, item, rating))
            order += 1
    user_ids, seqs, stamps, ratings = [], [], [], []
    used: dict[str, None] = {}
    for user, events in per_user.items():
        events.sort()  # time, then file order for ties
        user_ids.append(user)
        seqs.append([e[2] for e in events])
        stamps.append([e[0] for e in events])
        ratings.append([e[3] for e in events])
        for e in events:
            used.setdefault(e[2], None)
    add_items_without_text(meta, used, metadata=meta_path.name, logger=logger)
    records = [meta[item] for item in sorted(used)]
    dataset_name = name or train.name.split(".")[0]
    return Dataset(
        name=dataset_name,
        items=ItemTable(records, source=str(meta_path)),
        sequences=Sequences(user_ids, seqs, stamps, ratings),
        source={"format": "amazon2023", "path": str(src.resolve()), "files": [p.name for p in (train, valid, test, meta_path)]},
    )
