"""RecBole atomic files: ``NAME.inter`` plus optional ``NAME.item``.

Both are tab-separated with a typed header (``name:type``; types ``token``,
``token_seq``, ``float``, ``float_seq``) and CSV-style double-quote quoting, as
RecBole reads them (pandas ``read_csv``), e.g.::

    user_id:token  item_id:token  rating:float  timestamp:float
    item_id:token  title:token_seq  categories:token_seq  brand:token  price:float

``NAME.inter`` needs ``user_id`` and ``item_id``; ``rating`` and ``timestamp``
are kept when present. Sequences are sorted by timestamp when the column exists
(ties in file order), else kept in file order. ``NAME.item`` gives item fields
by their header types: ``float`` -> number (empty -> absent), ``token`` ->
string, ``token_seq`` -> text for text fields (``title``, ``description``) and
otherwise a list: a comma-separated value (``'Beauty', 'Makeup'`` or
``Food, Coffee``) is split on commas and unquoted, anything else on spaces
(RecBole's own separator). Common aliases are renamed: ``movie_title``/
``item_name`` -> ``title``, ``class``/``genre`` -> ``categories``. Ids are
tokens and are kept as they are.
"""

from __future__ import annotations

import ast
import csv
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..._io import open_text, resolve_input
from ...errors import DataError
from ..dataset import Dataset, ItemTable, Sequences
from ._common import add_items_without_text, clean_text, find_one, progress

__all__ = ["import_recbole"]

logger = logging.getLogger(__name__)

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
_ALIASES = {"movie_title": "title", "item_name": "title", "class": "categories", "genre": "categories"}
_TEXT_FIELDS = ("title", "description", "brand")


def _read_table(path: Path) -> tuple[list[tuple[str, str]], Iterator[tuple[int, list[str]]]]:
    """Parse the header and return ``([(name, type), ...], rows)``; rows carry line numbers."""
    handle = open_text(path)
    reader = csv.reader(handle, delimiter="\t", quotechar='"')
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise DataError(f"{path}: empty file; expected a header like 'user_id:token<TAB>item_id:token'") from None
    columns: list[tuple[str, str]] = []
    for column in header:
        name, sep, kind = column.strip().partition(":")
        if not sep or kind not in FIELD_TYPES or not name:
            handle.close()
            raise DataError(
                f"{path}:1: header column {column!r} is not 'name:type' with type one of {', '.join(FIELD_TYPES)}"
            )
        columns.append((name, kind))

    def rows() -> Iterator[tuple[int, list[str]]]:
        with handle:
            try:
                for row in progress(reader, f"reading {path.name}"):
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue
                    if len(row) != len(columns):
                        raise DataError(
                            f"{path}:{reader.line_num}: expected {len(columns)} tab-separated fields "
                            f"({', '.join(n for n, _ in columns)}), got {len(row)}"
                        )
                    yield reader.line_num, row
            except csv.Error as exc:  # e.g. a field over csv's size limit, a NUL byte
                raise DataError(f"{path}:{reader.line_num}: unreadable row ({exc})") from None

    return columns, rows()


def _float(value: str, *, path: Path, line: int, name: str) -> float | None:
    if not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise DataError(f"{path}:{line}: field {name!r} must be a number, got {value!r:.60}") from None


def _token_seq(value: str) -> list[str]:
    text = value.strip()
    if text[:1] in ("'", '"'):
        try:  # a Python list body: 'Beauty', 'Makeup', "Women's"
            parsed = ast.literal_eval("[" + text + "]")
            if all(isinstance(p, str) for p in parsed):
                return [p.strip() for p in parsed if p.strip()]
        except (ValueError, SyntaxError):
            pass
    separator = "," if "," in text else None
    return [t.strip().strip("'\"").strip() for t in text.split(separator) if t.strip().strip("'\"").strip()]


def _convert(name: str, kind: str, value: str, *, path: Path, line: int) -> Any:
    if kind == "float":
        return _float(value, path=path, line=line, name=name)
    if kind == "float_seq":
        numbers = [_float(v, path=path, line=line, name=name) for v in value.split()]
        return numbers or None
    if name in _TEXT_FIELDS:
        return clean_text(value)
    if kind == "token_seq":
        return _token_seq(value) or None
    return value.strip() or None


def _read_inter(path: Path) -> tuple[list[str], list[list[str]], list[list[float]] | None, list[list[float]] | None]:
    columns, rows = _read_table(path)
    names = [n for n, _ in columns]
    for required in ("user_id", "item_id"):
        if required not in names:
            raise DataError(f"{path}:1: header lacks column {required!r}; got {', '.join(names)}")
    user_col, item_col = names.index("user_id"), names.index("item_id")
    rating_col = names.index("rating") if "rating" in names else None
    time_col = names.index("timestamp") if "timestamp" in names else None

    per_user: dict[str, list[tuple[float, int, str, float | None]]] = {}
    for order, (line, row) in enumerate(rows):
        user, item = row[user_col].strip(), row[item_col].strip()
        if not user or not item:
            raise DataError(f"{path}:{line}: empty field {'user_id' if not user else 'item_id'!r}")
        stamp = rating = None
        if time_col is not None:
            stamp = _float(row[time_col], path=path, line=line, name="timestamp")
            if stamp is None:
                raise DataError(f"{path}:{line}: field 'timestamp' is empty; expected a number")
        if rating_col is not None:
            rating = _float(row[rating_col], path=path, line=line, name="rating")
            if rating is None:
                raise DataError(f"{path}:{line}: field 'rating' is empty; expected a number")
        per_user.setdefault(user, []).append((stamp if stamp is not None else 0.0, order, item, rating))
    users = list(per_user)
    events = [sorted(per_user[u]) if time_col is not None else per_user[u] for u in users]
    sequences = [[e[2] for e in evs] for evs in events]
    stamps = [[e[0] for e in evs] for evs in events] if time_col is not None else None
    ratings = [[float(e[3]) for e in evs] for evs in events] if rating_col is not None else None
    return users, sequences, stamps, ratings


def _read_item(path: Path) -> dict[str, dict[str, Any]]:
    columns, rows = _read_table(path)
    names = [n for n, _ in columns]
    if "item_id" not in names:
        raise DataError(f"{path}:1: header lacks column 'item_id'; got {', '.join(names)}")
    # An alias is renamed only when the canonical column is absent, so a file with
    # both ``categories`` and ``class`` keeps each under its own name.
    renamed = [n if n in ("item_id",) or _ALIASES.get(n) in names else _ALIASES.get(n, n) for n in names]
    if len(set(renamed)) != len(renamed):
        raise DataError(f"{path}:1: header names a field twice after renaming aliases: {', '.join(names)}")
    records: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for line, row in rows:
        record: dict[str, Any] = {}
        for name, (_, kind), value in zip(renamed, columns, row):
            if name == "item_id":
                continue
            converted = _convert(name, kind, value, path=path, line=line)
            if converted is not None:
                record[name] = converted
        item = row[names.index("item_id")].strip()
        if not item:
            raise DataError(f"{path}:{line}: empty field 'item_id'")
        if item in first_line:
            raise DataError(f"{path}:{line}: duplicate item_id {item!r} (first on line {first_line[item]})")
        first_line[item] = line
        records[item] = {"item_id": item, **record}
    return records


def import_recbole(src: Path, *, seed: int = 0, name: str | None = None) -> Dataset:
    """Import a RecBole directory holding ``NAME.inter`` and optionally ``NAME.item``.

    Args:
        src: the directory.
        seed: unused (the import is deterministic); accepted like every importer.
        name: dataset name; defaults to ``NAME``.

    Items in ``NAME.item`` never interacted with are kept; items in
    ``NAME.inter`` but not in ``NAME.item`` are kept without text (warning).

    Raises:
        DataError: missing files, a bad header, malformed rows (file, line,
            field, value), duplicate item ids.
    """
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"source directory not found: {src}")
    inter_path = find_one(src, ["*.inter"], "interaction file (NAME.inter)")
    stem = inter_path.name.split(".inter")[0]
    users, sequences, stamps, ratings = _read_inter(inter_path)
    try:
        item_path: Path | None = resolve_input(src / f"{stem}.item")
    except DataError:
        item_path = None
        logger.warning("%s: no %s.item; items will have no text", src, stem)
    records = _read_item(item_path) if item_path is not None else {}
    add_items_without_text(
        records, (i for s in sequences for i in s), metadata=item_path.name if item_path else "NAME.item", logger=logger
    )
    files = [p.name for p in (inter_path, item_path) if p is not None]
    return Dataset(
        name=name or stem,
        items=ItemTable(records.values(), source=str(item_path or inter_path)),
        sequences=Sequences(users, sequences, stamps or [], ratings or []),
        source={"format": "recbole", "path": str(src.resolve()), "files": files},
    )
