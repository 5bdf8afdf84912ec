"""Datasets shipped inside the package, addressed as ``builtin:NAME``."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError

__all__ = ["builtin_datasets", "resolve_dataset_path"]

_ROOT = Path(__file__).resolve().parent.parent / "datasets"
PREFIX = "builtin:"


def builtin_datasets() -> list[str]:
    """Names of the datasets embedded in the package (sorted)."""
    if not _ROOT.is_dir():
        return []
    return sorted(p.name for p in _ROOT.iterdir() if (p / "dataset.json").exists())


def resolve_dataset_path(path: str | os.PathLike[str]) -> Path:
    """Turn ``builtin:NAME`` into the embedded directory; other paths pass through."""
    text = os.fspath(path)
    if not text.startswith(PREFIX):
        return Path(text)
    name = text[len(PREFIX):]
    names = builtin_datasets()
    if name not in names:
        raise DataError(f"unknown built-in dataset {name!r}; available: {', '.join(names) or 'none'}")
    return _ROOT / name
