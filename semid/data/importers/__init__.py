"""Importers from other layouts into the canonical dataset format.

Each importer is a function ``(src: Path, *, seed: int = 0, name=None, ...) -> Dataset``
listed in :data:`IMPORTERS`; ``semid data import --format NAME SRC OUT`` calls it
and saves the result. Inputs may be gzip-compressed (``.gz``) everywhere.

========== ==================================================== ==============
format     layout                                               id remapping
========== ==================================================== ==============
amazon2023 ``NAME.{train,valid,test}.csv`` + ``meta*``           none needed
lcrec      ``NAME.inter.json`` + ``NAME.item.json``              ``remap=``
movielens  ml-100k ``u.data``/``u.item`` or ml-1m ``*.dat``       none needed
p5         ``sequential_data.txt``/``Beauty.txt`` + metadata     ``remap=``
recbole    ``NAME.inter`` + ``NAME.item`` (typed TSV)            kept as is
========== ==================================================== ==============

See ``docs/datasets.md`` for each layout and why ids are remapped.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from ...errors import ParameterError
from ..dataset import Dataset
from .amazon2023 import import_amazon2023
from .lcrec import import_lcrec
from .movielens import import_movielens
from .p5 import import_p5
from .recbole import import_recbole

__all__ = ["IMPORTERS", "import_dataset"]

IMPORTERS: dict[str, Callable[..., Dataset]] = {
    "amazon2023": import_amazon2023,
    "lcrec": import_lcrec,
    "movielens": import_movielens,
    "p5": import_p5,
    "recbole": import_recbole,
}


def import_dataset(fmt: str, src: str | Path, **options) -> Dataset:
    """Run the importer for ``fmt`` on ``src`` with keyword ``options``.

    Raises:
        ParameterError: unknown format, or an option the importer does not take.
    """
    try:
        importer = IMPORTERS[fmt]
    except KeyError:
        raise ParameterError(f"unknown import format {fmt!r}; valid formats: {', '.join(sorted(IMPORTERS))}") from None
    accepted = [n for n, p in inspect.signature(importer).parameters.items() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ParameterError(
            f"format {fmt!r} does not take option(s) {', '.join(unknown)}; it takes: {', '.join(accepted)}"
        )
    return importer(Path(src), **options)
