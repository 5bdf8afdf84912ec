"""MovieLens 100K (``u.data``, ``u.item``, ``u.genre``) and 1M (``ratings.dat``, ``movies.dat``).

Layout of ``src`` (a directory; every file may be ``.gz``), detected by file name:

- ml-100k: ``u.data`` = ``user<TAB>movie<TAB>rating<TAB>unix_time``; ``u.item`` =
  ``movie|title|release_date|video_release_date|IMDb_URL|flag x 19`` (Latin-1);
  ``u.genre`` = ``name|index`` naming the 19 flags.
- ml-1m: ``ratings.dat`` = ``user::movie::rating::unix_time``; ``movies.dat`` =
  ``movie::title::Genre|Genre|...`` (Latin-1).

Every rating becomes an interaction (no rating threshold); each user's sequence
is sorted by timestamp, ties kept in file order, with ratings and timestamps
aligned. Item fields: ``title`` as written (``"Toy Story (1995)"``), ``year``
from the title's ``(YYYY)`` suffix or the release date, ``categories`` = the
movie's genres as a *flat list* (genres are not a hierarchy, unlike Amazon
category paths: a scheme reading ``categories`` as a root-first path will treat
the first genre as the root), and for ml-100k ``release_date``,
``video_release_date``, ``imdb_url`` when present. The placeholder genre
``unknown`` and the placeholder title ``unknown`` (movie 267) are dropped.
Movie ids are kept: MovieLens numbers movies by catalogue, not by first rating.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..._io import open_text, resolve_input
from ...errors import DataError
from ..dataset import Dataset, ItemTable, Sequences
from ._common import add_items_without_text, progress

__all__ = ["import_movielens"]

logger = logging.getLogger(__name__)

_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")
_YEAR_IN_DATE = re.compile(r"(\d{4})\s*$")
_PLACEHOLDER = "unknown"


def _optional(src: Path, name: str) -> Path | None:
    try:
        return resolve_input(src / name)
    except DataError:
        return None


def _split_lines(path: Path, separator: str, n_fields: int | None, *, encoding: str) -> Iterator[tuple[int, list[str]]]:
    with open_text(path, encoding=encoding) as handle:
        for line_number, line in enumerate(progress(handle, f"reading {path.name}"), start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split(separator)
            if n_fields is not None and len(parts) != n_fields:
                raise DataError(
                    f"{path}:{line_number}: expected {n_fields} fields separated by {separator!r}, "
                    f"got {len(parts)}: {line!r:.80}"
                )
            yield line_number, parts


def _read_ratings(path: Path, separator: str) -> list[tuple[str, str, float, float]]:
    names = ("user", "item", "rating", "timestamp")
    rows = []
    for line, parts in _split_lines(path, separator, 4, encoding="latin-1"):
        user, item = parts[0].strip(), parts[1].strip()
        for field_name, value in zip(names[:2], (user, item)):
            if not value.isdigit():
                raise DataError(f"{path}:{line}: field {field_name!r} must be an integer id, got {value!r}")
        try:
            rating, stamp = float(parts[2]), float(parts[3])
        except ValueError:
            raise DataError(
                f"{path}:{line}: fields 'rating'/'timestamp' must be numbers, got {parts[2]!r}/{parts[3]!r}"
            ) from None
        rows.append((str(int(user)), str(int(item)), rating, stamp))
    return rows


def _year(title: str | None, date: str | None) -> int | None:
    for pattern, text in ((_YEAR_IN_TITLE, title), (_YEAR_IN_DATE, date)):
        match = pattern.search(text or "")
        if match:
            return int(match.group(1))
    return None


def _add_item(records: dict[str, dict[str, Any]], item: str, record: dict[str, Any], path: Path, line: int) -> None:
    if not item.isdigit():
        raise DataError(f"{path}:{line}: field 'movie_id' must be an integer id, got {item!r}")
    item = str(int(item))
    if item in records:
        raise DataError(f"{path}:{line}: duplicate movie_id {item!r}")
    records[item] = {"item_id": item, **{k: v for k, v in record.items() if v not in (None, "", [])}}


def _read_genre_names(path: Path) -> list[str]:
    by_index: dict[int, str] = {}
    for line, parts in _split_lines(path, "|", 2, encoding="latin-1"):
        if not parts[1].strip().isdigit():
            raise DataError(f"{path}:{line}: field 'index' must be an integer, got {parts[1]!r}")
        by_index[int(parts[1])] = parts[0]
    if sorted(by_index) != list(range(len(by_index))):
        raise DataError(f"{path}: genre indexes must be 0..{len(by_index) - 1}, got {sorted(by_index)}")
    return [by_index[i] for i in range(len(by_index))]


def _read_items_100k(path: Path, genre_names: list[str]) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    for line, parts in _split_lines(path, "|", 5 + len(genre_names), encoding="latin-1"):
        flags = parts[5:]
        for position, flag in enumerate(flags):
            if flag not in ("0", "1"):
                raise DataError(
                    f"{path}:{line}: genre flag {position} ({genre_names[position]!r}) must be 0 or 1, got {flag!r}"
                )
        title = parts[1].strip() or None
        title = None if title == _PLACEHOLDER else title
        genres = [g for g, flag in zip(genre_names, flags) if flag == "1" and g != _PLACEHOLDER]
        _add_item(records, parts[0].strip(), {
            "title": title,
            "year": _year(title, parts[2]),
            "categories": genres,
            "release_date": parts[2].strip(),
            "video_release_date": parts[3].strip(),
            "imdb_url": parts[4].strip(),
        }, path, line)
    return records


def _read_items_1m(path: Path) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    for line, parts in _split_lines(path, "::", 3, encoding="latin-1"):
        title = parts[1].strip() or None
        genres = [g.strip() for g in parts[2].split("|") if g.strip() and g.strip() != _PLACEHOLDER]
        _add_item(records, parts[0].strip(), {"title": title, "year": _year(title, None), "categories": genres}, path, line)
    return records


def import_movielens(src: Path, *, seed: int = 0, name: str | None = None) -> Dataset:
    """Import an ml-100k or ml-1m directory (see the module docstring).

    Args:
        src: the directory.
        seed: unused (the import is deterministic); accepted like every importer.
        name: dataset name; defaults to ``ml-100k`` / ``ml-1m``.

    Raises:
        DataError: neither layout found, malformed lines (file, line, field,
            value), duplicate movie ids.
    """
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"source directory not found: {src}")
    if _optional(src, "u.data") is not None:
        ratings_path, variant = resolve_input(src / "u.data"), "ml-100k"
        items_path = resolve_input(src / "u.item")
        genre_path = resolve_input(src / "u.genre")
        rows = _read_ratings(ratings_path, "\t")
        records = _read_items_100k(items_path, _read_genre_names(genre_path))
        files = [ratings_path.name, items_path.name, genre_path.name]
    elif _optional(src, "ratings.dat") is not None:
        ratings_path, variant = resolve_input(src / "ratings.dat"), "ml-1m"
        items_path = resolve_input(src / "movies.dat")
        rows = _read_ratings(ratings_path, "::")
        records = _read_items_1m(items_path)
        files = [ratings_path.name, items_path.name]
    else:
        raise DataError(f"{src}: no MovieLens ratings found (looked for u.data for ml-100k, ratings.dat for ml-1m)")

    per_user: dict[str, list[tuple[float, int, str, float]]] = {}
    for order, (user, item, rating, stamp) in enumerate(rows):
        per_user.setdefault(user, []).append((stamp, order, item, rating))
    users = sorted(per_user, key=int)
    for user in users:
        per_user[user].sort()  # time, then file order for ties
    add_items_without_text(records, (row[1] for row in rows), metadata=items_path.name, logger=logger)
    return Dataset(
        name=name or variant,
        items=ItemTable((records[i] for i in sorted(records, key=int)), source=str(items_path)),
        sequences=Sequences(
            users,
            [[e[2] for e in per_user[u]] for u in users],
            [[e[0] for e in per_user[u]] for u in users],
            [[e[3] for e in per_user[u]] for u in users],
        ),
        source={"format": "movielens", "variant": variant, "path": str(src.resolve()), "files": files},
    )
