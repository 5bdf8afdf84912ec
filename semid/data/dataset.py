"""The canonical on-disk dataset: items with text fields, user sequences in time order.

A dataset is a directory::

    dataset.json      {"format": "semid-dataset", "format_version": 1, "name": ...,
                       "source": {...}, "counts": {...}}
    items.jsonl       one item per line: {"item_id": "B00..", "title": str,
                       "brand": str, "categories": [str, ...] (root first),
                       "description": str, "price": float, ...any other field}
    sequences.jsonl   one user per line: {"user_id": str, "items": [item_id, ...]
                       (oldest first), "timestamps": [number, ...] (optional),
                       "ratings": [number, ...] (optional)}
    id_map.tsv        optional: original_id <TAB> item_id, when an importer remapped ids

Every field except ``item_id`` is optional per item; schemes that need a field
check it (:meth:`ItemTable.require`). Files may be gzip-compressed (``.jsonl.gz``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_directory, iter_jsonl, open_text, read_versioned_json, resolve_input, write_json
from ..errors import ArtifactError, DataError, MissingFieldError, UnknownItemError

__all__ = [
    "DATASET_FORMAT",
    "DATASET_FORMAT_VERSION",
    "Dataset",
    "ItemTable",
    "Sequences",
    "load_dataset",
    "save_dataset",
]

logger = logging.getLogger(__name__)

DATASET_FORMAT = "semid-dataset"
DATASET_FORMAT_VERSION = 1

#: Text fields in the order item text is usually assembled.
TEXT_FIELDS = ("title", "brand", "categories", "description", "price")


def _is_present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, tuple)):
        return any(_is_present(v) for v in value)
    if isinstance(value, float):
        return not math.isnan(value)
    return True


class ItemTable:
    """Items in a fixed order, each a dict with at least ``item_id`` (str).

    The row order is the order of every item-aligned array in semid (codes,
    embeddings): row ``i`` of an array describes ``item_ids[i]``.
    """

    def __init__(self, records: Iterable[Mapping[str, Any]], *, source: str = "<items>"):
        self.records: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}
        for position, record in enumerate(records):
            item_id = record.get("item_id")
            if not isinstance(item_id, str) or not item_id:
                raise DataError(
                    f"{source}: item #{position + 1}: field 'item_id' must be a non-empty "
                    f"string, got {item_id!r}"
                )
            if item_id in self.index:
                raise DataError(
                    f"{source}: item #{position + 1}: duplicate item_id {item_id!r} "
                    f"(first seen as item #{self.index[item_id] + 1})"
                )
            self.index[item_id] = position
            self.records.append(dict(record))

    @property
    def item_ids(self) -> list[str]:
        return [r["item_id"] for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.index

    def __getitem__(self, item_id: str) -> dict[str, Any]:
        try:
            return self.records[self.index[item_id]]
        except KeyError:
            raise UnknownItemError(f"unknown item id {item_id!r}") from None

    def position(self, item_id: str) -> int:
        """Row of ``item_id``; raises :class:`UnknownItemError`."""
        try:
            return self.index[item_id]
        except KeyError:
            raise UnknownItemError(f"unknown item id {item_id!r}") from None

    def field(self, name: str) -> list[Any]:
        """Values of one field in row order (``None`` where absent)."""
        return [r.get(name) for r in self.records]

    def coverage(self) -> dict[str, float]:
        """Fraction of items with a non-empty value, for every field seen."""
        counts: dict[str, int] = {}
        for record in self.records:
            for key, value in record.items():
                if key != "item_id" and _is_present(value):
                    counts[key] = counts.get(key, 0) + 1
                else:
                    counts.setdefault(key, 0)
        n = max(len(self.records), 1)
        return {key: counts[key] / n for key in sorted(counts) if key != "item_id"}

    def require(self, name: str, *, scheme: str, allow_missing: bool = False) -> list[Any]:
        """Values of a field a scheme needs; raise when any item lacks it.

        Raises:
            MissingFieldError: names the field, the scheme, how many items lack it
                and the first few of their ids.
        """
        values = self.field(name)
        missing = [self.records[i]["item_id"] for i, v in enumerate(values) if not _is_present(v)]
        if missing and not allow_missing:
            shown = ", ".join(repr(m) for m in missing[:5])
            raise MissingFieldError(
                f"scheme {scheme!r} needs field {name!r} on every item, but {len(missing)} of "
                f"{len(values)} items lack it (e.g. {shown})"
            )
        return values


@dataclass
class Sequences:
    """User interaction sequences in time order (oldest first).

    ``items[u]`` lists item ids; ``timestamps[u]`` and ``ratings[u]``, when not
    ``None``, are aligned with it.
    """

    user_ids: list[str]
    items: list[list[str]]
    timestamps: list[list[float] | None] = field(default_factory=list)
    ratings: list[list[float] | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.timestamps:
            self.timestamps = [None] * len(self.user_ids)
        if not self.ratings:
            self.ratings = [None] * len(self.user_ids)

    def __len__(self) -> int:
        return len(self.user_ids)

    @property
    def n_interactions(self) -> int:
        return sum(len(s) for s in self.items)


@dataclass
class Dataset:
    """Items plus user sequences, as read from a canonical dataset directory."""

    name: str
    items: ItemTable
    sequences: Sequences
    source: dict[str, Any] = field(default_factory=dict)
    id_map: dict[str, str] | None = None  # original id -> item_id, when remapped
    path: Path | None = None

    def validate(self, *, where: str = "<sequences>") -> None:
        """Check that every sequence names known items and aligned fields match.

        Raises:
            DataError / UnknownItemError with the user (and line) at fault.
        """
        first_line: dict[str, int] = {}
        for line, (user, seq) in enumerate(zip(self.sequences.user_ids, self.sequences.items), 1):
            if user in first_line:
                raise DataError(f"{where}:{line}: duplicate user_id {user!r} (first at {first_line[user]})")
            first_line[user] = line
            _check_sequence(where, line, user, seq, self.items)


def _check_sequence(where: str, line: int, user: str, seq: Sequence[str], items: ItemTable) -> None:
    if not seq:
        raise DataError(
            f"{where}:{line}: user {user!r} has an empty 'items' list; "
            "expected at least one interaction (drop the user instead)"
        )
    for item in seq:
        if item not in items:
            raise UnknownItemError(
                f"{where}:{line}: field 'items' of user {user!r} names unknown item {item!r} "
                "(not in items.jsonl)"
            )


def _numbers(where: str, line: int, key: str, values: Any, length: int) -> list[float] | None:
    if values is None:
        return None
    if not isinstance(values, list) or len(values) != length:
        raise DataError(
            f"{where}:{line}: field {key!r} must be a list of {length} numbers "
            f"(one per item), got {values!r:.80}"
        )
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise DataError(f"{where}:{line}: field {key!r} holds non-number {v!r}")
    return [float(v) for v in values]


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read a canonical dataset directory (or the name of a built-in dataset).

    ``path`` may be ``builtin:NAME`` (see :func:`semid.data.builtin_datasets`).

    Raises:
        DataError: a missing file, a malformed line (file and line number), a
            duplicate item id, a sequence naming an unknown item, an empty sequence.
        ArtifactError: the directory is of a newer dataset format version.
    """
    from .builtin import resolve_dataset_path

    root = resolve_dataset_path(path)
    if not root.is_dir():
        raise DataError(f"dataset directory not found: {root}")
    meta = read_versioned_json(
        root / "dataset.json", format=DATASET_FORMAT, max_version=DATASET_FORMAT_VERSION, what="dataset",
        hint=" (create one with `semid data import`)", error=DataError,
    )

    items_path = resolve_input(root / "items.jsonl")
    records = []
    seen: dict[str, int] = {}
    for line, record in iter_jsonl(items_path):
        item_id = record.get("item_id")
        if not isinstance(item_id, str) or not item_id:
            raise DataError(
                f"{items_path}:{line}: field 'item_id' must be a non-empty string, got {item_id!r}"
            )
        if item_id in seen:
            raise DataError(
                f"{items_path}:{line}: duplicate item_id {item_id!r} (first on line {seen[item_id]})"
            )
        seen[item_id] = line
        records.append(record)
    items = ItemTable(records, source=str(items_path))

    seq_path = resolve_input(root / "sequences.jsonl")
    user_ids: list[str] = []
    seqs: list[list[str]] = []
    stamps: list[list[float] | None] = []
    ratings: list[list[float] | None] = []
    seen_users: dict[str, int] = {}
    for line, record in iter_jsonl(seq_path):
        user = record.get("user_id")
        if not isinstance(user, str) or not user:
            raise DataError(f"{seq_path}:{line}: field 'user_id' must be a non-empty string, got {user!r}")
        if user in seen_users:
            raise DataError(f"{seq_path}:{line}: duplicate user_id {user!r} (first on line {seen_users[user]})")
        seen_users[user] = line
        seq = record.get("items")
        if not isinstance(seq, list) or not all(isinstance(i, str) for i in seq):
            raise DataError(f"{seq_path}:{line}: field 'items' must be a list of item id strings, got {seq!r:.80}")
        _check_sequence(str(seq_path), line, user, seq, items)
        user_ids.append(user)
        seqs.append(seq)
        stamps.append(_numbers(str(seq_path), line, "timestamps", record.get("timestamps"), len(seq)))
        ratings.append(_numbers(str(seq_path), line, "ratings", record.get("ratings"), len(seq)))

    id_map = None
    map_path = root / "id_map.tsv"
    if map_path.exists() or (root / "id_map.tsv.gz").exists():
        id_map = {}
        with open_text(map_path) as handle:
            for line_number, line in enumerate(handle, 1):
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 2:
                    raise DataError(f"{map_path}:{line_number}: expected 'original_id<TAB>item_id', got {line!r:.80}")
                id_map[parts[0]] = parts[1]

    return Dataset(
        name=str(meta.get("name", root.name)),
        items=items,
        sequences=Sequences(user_ids, seqs, stamps, ratings),
        source=dict(meta.get("source", {})),
        id_map=id_map,
        path=root,
    )


def _dump_line(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


def save_dataset(dataset: Dataset, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``dataset`` atomically as a canonical directory; returns its path.

    Raises:
        ArtifactError: ``path`` exists and ``overwrite`` is false.
    """
    dataset.validate()
    path = Path(path)
    with atomic_directory(path, overwrite=overwrite, marker="dataset.json") as staging:
        with open(staging / "items.jsonl", "w", encoding="utf-8") as handle:
            for record in dataset.items.records:
                handle.write(_dump_line(record))
        seqs = dataset.sequences
        with open(staging / "sequences.jsonl", "w", encoding="utf-8") as handle:
            for u, user in enumerate(seqs.user_ids):
                row: dict[str, Any] = {"user_id": user, "items": seqs.items[u]}
                if seqs.timestamps[u] is not None:
                    row["timestamps"] = seqs.timestamps[u]
                if seqs.ratings[u] is not None:
                    row["ratings"] = seqs.ratings[u]
                handle.write(_dump_line(row))
        if dataset.id_map is not None:
            with open(staging / "id_map.tsv", "w", encoding="utf-8") as handle:
                for original, new in dataset.id_map.items():
                    handle.write(f"{original}\t{new}\n")
        write_json(
            staging / "dataset.json",
            {
                "format": DATASET_FORMAT,
                "format_version": DATASET_FORMAT_VERSION,
                "name": dataset.name,
                "source": dataset.source,
                "counts": {
                    "items": len(dataset.items),
                    "users": len(seqs),
                    "interactions": seqs.n_interactions,
                },
            },
        )
    return path
