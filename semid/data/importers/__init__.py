"""Importers from other layouts into the canonical dataset format.

Each importer is a function ``(src: Path, *, seed: int = 0) -> Dataset`` listed in
:data:`IMPORTERS`; ``semid data import --format NAME SRC OUT`` calls it and saves
the result. Inputs may be gzip-compressed (``.gz``) everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...errors import ParameterError
from ..dataset import Dataset
from .amazon2023 import import_amazon2023

__all__ = ["IMPORTERS", "import_dataset"]

IMPORTERS: dict[str, Callable[..., Dataset]] = {
    "amazon2023": import_amazon2023,
}


def import_dataset(fmt: str, src: str | Path, **options) -> Dataset:
    """Run the importer for ``fmt`` on ``src``."""
    try:
        importer = IMPORTERS[fmt]
    except KeyError:
        raise ParameterError(f"unknown import format {fmt!r}; valid formats: {', '.join(sorted(IMPORTERS))}") from None
    return importer(Path(src), **options)
