"""Datasets: the canonical format, importers from other layouts, statistics."""

from .builtin import builtin_datasets, resolve_dataset_path
from .dataset import (
    DATASET_FORMAT,
    DATASET_FORMAT_VERSION,
    Dataset,
    ItemTable,
    Sequences,
    load_dataset,
    save_dataset,
)
from .stats import dataset_stats
from .subset import subset_dataset

__all__ = [
    "DATASET_FORMAT",
    "DATASET_FORMAT_VERSION",
    "Dataset",
    "ItemTable",
    "Sequences",
    "builtin_datasets",
    "dataset_stats",
    "load_dataset",
    "resolve_dataset_path",
    "save_dataset",
    "subset_dataset",
]
