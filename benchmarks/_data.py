"""Benchmark datasets, imported once into a shared cache.

Benchmarks call :func:`ensure_beauty` / :func:`ensure_ml100k` to get a canonical
dataset directory, importing it from ``../shared/data`` (or ``$SEMID_SHARED_DATA``) on first use into
``cache/`` (or ``$SEMID_BENCH_CACHE``)::

    from _data import ensure_beauty          # benchmarks/ is on sys.path for scripts here
    data = semid.load_dataset(ensure_beauty())

The imported directory is world-readable so every engineer's jobs can share it.
MovieLens may not be redistributed: its import stays in the cache, never in the repo.

Run as a script to import both and print their paths::

    .venv/bin/python benchmarks/_data.py [--cache-dir cache/data]
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from semid.data import save_dataset
from semid.data.importers import import_dataset

__all__ = [
    "CACHE_ROOT",
    "DEFAULT_CACHE",
    "SHARED_DATA",
    "ensure_beauty",
    "ensure_imported",
    "ensure_ml100k",
    "write_beauty_as_recbole",
]

logger = logging.getLogger(__name__)

#: The repository's root; the shared datasets sit beside it (``../shared/data``).
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SEMID_SHARED_DATA", REPO.parent / "shared" / "data"))
#: Derived files of the benchmarks (imports, embeddings, runs); git ignores ``cache/``.
CACHE_ROOT = Path(os.environ.get("SEMID_BENCH_CACHE", REPO / "cache"))
DEFAULT_CACHE = CACHE_ROOT / "data"

#: Counts published in ``amazon_beauty_2014/SOURCE.md``; a mismatch means a broken import.
BEAUTY_COUNTS = {"users": 22_363, "items": 12_101, "interactions": 198_502}
#: Counts published in ``movielens_100k/SOURCE.md``.
ML100K_COUNTS = {"users": 943, "items": 1_682, "interactions": 100_000}


def _make_world_readable(path: Path) -> None:
    for root, dirs, files in os.walk(path):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(Path(root) / name, 0o644)


def ensure_imported(
    fmt: str, src: Path, dest: Path, *, expected: dict[str, int] | None = None, **options
) -> Path:
    """Import ``src`` with format ``fmt`` into ``dest`` unless ``dest`` already holds a dataset.

    The import is atomic (a concurrent reader sees either nothing or the whole
    dataset); two processes racing to create it both succeed, one import wins.

    Raises:
        RuntimeError: the imported counts differ from ``expected``.
    """
    if (dest / "dataset.json").exists():
        return dest
    dataset = import_dataset(fmt, src, **options)
    counts = {
        "users": len(dataset.sequences),
        "items": len(dataset.items),
        "interactions": dataset.sequences.n_interactions,
    }
    if expected is not None and counts != expected:
        raise RuntimeError(f"import of {src} gave {counts}, expected {expected}")
    try:
        save_dataset(dataset, dest)
    except OSError:
        if not (dest / "dataset.json").exists():  # lost a race: fine if the winner finished
            raise
    _make_world_readable(dest)
    logger.info("imported %s into %s: %s", src, dest, counts)
    return dest


def ensure_beauty(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Amazon Beauty 2014 (P5 files, item ids remapped to ASINs) in ``<cache_dir>/beauty``."""
    return ensure_imported(
        "p5", SHARED_DATA / "amazon_beauty_2014", Path(cache_dir) / "beauty",
        expected=BEAUTY_COUNTS, remap="asin", name="beauty",
    )


def ensure_ml100k(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """MovieLens-100K (ratings and timestamps kept) in ``<cache_dir>/ml100k``."""
    return ensure_imported(
        "movielens", SHARED_DATA / "movielens_100k", Path(cache_dir) / "ml100k",
        expected=ML100K_COUNTS, name="ml100k",
    )


def write_beauty_as_recbole(dest: Path, cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Write Beauty as RecBole atomic files in ``dest`` (a new directory) and return it.

    ``beauty.inter`` holds the sequences of :func:`ensure_beauty` in file order
    (``user_id:token item_id:token``) with item ids translated to the RecBole
    numbering of ``item_description.csv`` (the 1-based rank of the ASIN in sorted
    order, per its SOURCE.md); ``beauty.item.gz`` links that real RecBole file.
    Importing ``dest`` with the ``recbole`` importer must reproduce Beauty.
    """
    from semid.data import load_dataset

    beauty = load_dataset(ensure_beauty(cache_dir))
    rank = {asin: str(k) for k, asin in enumerate(sorted(beauty.items.item_ids), start=1)}
    dest.mkdir(parents=True)
    with open(dest / "beauty.inter", "w", encoding="utf-8") as handle:
        handle.write("user_id:token\titem_id:token\n")
        for user, items in zip(beauty.sequences.user_ids, beauty.sequences.items):
            handle.writelines(f"{user}\t{rank[item]}\n" for item in items)
    os.symlink(SHARED_DATA / "amazon_beauty_2014" / "item_description.csv.gz", dest / "beauty.item.gz")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for ensure in (ensure_beauty, ensure_ml100k):
        logger.info("%s -> %s", ensure.__name__, ensure(args.cache_dir))


if __name__ == "__main__":
    main()
