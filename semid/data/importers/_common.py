"""Helpers shared by importers: text cleaning, category paths, file lookup."""

from __future__ import annotations

import ast
import html
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...errors import DataError

__all__ = ["clean_text", "find_one", "parse_categories", "parse_price", "parse_python_literal"]


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
