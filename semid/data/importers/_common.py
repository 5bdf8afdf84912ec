"""Helpers shared by importers: text cleaning, category paths, file lookup."""

from __future__ import annotations

import ast
import html
import json
import logging
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..._io import open_text
from ...errors import DataError

__all__ = [
    "add_items_without_text",
    "clean_text",
    "find_one",
    "id_sort_key",
    "load_json_object",
    "parse_categories",
    "parse_price",
    "parse_python_literal",
    "progress",
]


def clean_text(value: Any) -> str | None:
    """Unescape HTML entities and collapse whitespace; ``None`` for empty values."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value if v)
    text = " ".join(html.unescape(str(value)).split())
    return text or None


def parse_price(value: Any) -> float | None:
    """A price as float (accepts ``"$12.50"``); ``None`` when absent or not a number."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    text = str(value).strip().lstrip("$").replace(",", "")
    try:
        price = float(text)
    except ValueError:
        return None
    return None if math.isnan(price) else price


def parse_python_literal(text: str, *, where: str) -> Any:
    """``ast.literal_eval`` with a DataError naming the place on failure."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise DataError(f"{where}: cannot parse {text!r:.80} as a Python literal") from None


def parse_categories(value: Any, *, separator: str = ",") -> list[str] | None:
    """A category path (root first) from a list, a nested list, or a separated string."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(separator)]
    elif isinstance(value, Iterable):
        flat: list[str] = []
        for v in value:
            if isinstance(v, (list, tuple)):  # 2014 metadata: list of paths; keep the first
                if not flat:
                    flat.extend(str(x) for x in v)
            else:
                flat.append(str(v))
        parts = [p.strip() for p in flat]
    else:
        return None
    parts = [html.unescape(p) for p in parts if p]
    return parts or None


def find_one(src: Path, patterns: Iterable[str], what: str) -> Path:
    """The single file in ``src`` matching one of ``patterns`` (plain or ``.gz``)."""
    matches: list[Path] = []
    for pattern in patterns:
        matches.extend(sorted(src.glob(pattern)))
        matches.extend(sorted(src.glob(pattern + ".gz")))
    unique = list(dict.fromkeys(matches))
    if not unique:
        raise DataError(f"{src}: no {what} found (looked for {', '.join(patterns)})")
    if len(unique) > 1:
        raise DataError(f"{src}: several candidates for {what}: {', '.join(p.name for p in unique)}")
    return unique[0]


def progress(iterable: Iterable[Any], desc: str, *, total: int | None = None) -> Iterable[Any]:
    """Wrap ``iterable`` in a tqdm bar (shown on terminals only, gone when done)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=" rows", disable=None, leave=False)


def add_items_without_text(
    records: dict[str, dict[str, Any]], used: Iterable[str], *, metadata: str, logger: logging.Logger
) -> list[str]:
    """Add a bare ``{"item_id": ...}`` record for every used item the metadata lacks.

    Interactions are the ground truth of what exists; dropping them would change
    every user's sequence, so unknown items are kept (without text) and counted in
    a warning. They are added in id order, not first-use order, which would leak
    time order into the row order. Returns the added ids.
    """
    missing = sorted({item for item in used if item not in records}, key=id_sort_key)
    for item in missing:
        records[item] = {"item_id": item}
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        logger.warning(
            "%d item(s) in the interactions are missing from %s and are kept without text (e.g. %s)",
            len(missing), metadata, shown,
        )
    return missing


def id_sort_key(item_id: str) -> tuple[int, int, str]:
    """Sort key putting integer ids in numeric order before other ids (in text order)."""
    return (0, int(item_id), "") if item_id.isascii() and item_id.isdigit() else (1, 0, item_id)


def load_json_object(path: Path, what: str) -> dict[str, Any]:
    """Read a file holding one JSON object, rejecting duplicate keys.

    ``json`` silently keeps the last of two equal keys; for an id-keyed file that
    would hide a duplicate item or user, so it is an error here.

    Raises:
        DataError: malformed JSON (file and line), a non-object top level, or a
            duplicate key at the top level (file and key).
    """
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise _DuplicateKey(key)
            result[key] = value
        return result

    with open_text(path) as handle:
        text = handle.read()
    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    except _DuplicateKey as exc:
        raise DataError(
            f"{_where_duplicate(path, text, exc.key)}: duplicate key {exc.key!r} in {what}; "
            "every id must appear once"
        ) from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object mapping ids to {what}, got {type(data).__name__}")
    return data


def _where_duplicate(path: Path, text: str, key: str) -> str:
    """``path:line`` of the second ``"key":`` when the file holds exactly two.

    The JSON parser does not report positions; with more than two occurrences
    (the same key in other nested objects) the line would be a guess, so it is left out.
    """
    pattern = "|".join(re.escape(json.dumps(key, ensure_ascii=a)) for a in (True, False))
    hits = [m.start() for m in re.finditer(f"(?:{pattern})" + r"\s*:", text)]
    if len(hits) == 2:
        return f"{path}:{text.count(chr(10), 0, hits[1]) + 1}"
    return str(path)


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key
