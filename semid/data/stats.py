"""Descriptive statistics of a dataset, as a JSON-ready dict (``semid data stats``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .dataset import Dataset

__all__ = ["dataset_stats"]


def _length_summary(lengths: np.ndarray) -> dict[str, float]:
    if lengths.size == 0:
        return {}
    quantiles = np.percentile(lengths, [25, 50, 75, 90])
    return {
        "min": int(lengths.min()),
        "p25": float(quantiles[0]),
        "median": float(quantiles[1]),
        "p75": float(quantiles[2]),
        "p90": float(quantiles[3]),
        "max": int(lengths.max()),
        "mean": round(float(lengths.mean()), 4),
    }


def _presence(values: list[list[float] | None]) -> str:
    """``"all"``, ``"none"`` or ``"partial"``: how many users carry the field."""
    present = sum(v is not None for v in values)
    if present == len(values):
        return "all" if values else "none"
    return "none" if present == 0 else "partial"


def dataset_stats(dataset: Dataset) -> dict[str, Any]:
    """Counts, sequence-length distribution, coverage and split readiness of ``dataset``.

    Returns a dict with:

    - ``name``, ``users``, ``items``, ``interactions``;
    - ``density`` = interactions / (users x items);
    - ``sequence_length``: min, p25, median, p75, p90, max, mean (numpy's
      linear-interpolation percentiles);
    - ``repeated_interactions``: interactions naming an item the user already had;
    - ``field_coverage``: :meth:`ItemTable.coverage` (fraction of items with a
      non-empty value, per field);
    - ``leave_one_out``: users too short for a test case (< 2 items) or a
      validation case (< 3 items), as :func:`semid.evaluation.leave_one_out` counts
      them, and the number of test and validation cases;
    - ``items_never_interacted``: items in the table no sequence names;
    - ``timestamps`` / ``ratings``: ``"all"``, ``"partial"`` or ``"none"`` of users.
    """
    from semid.evaluation import leave_one_out

    sequences = dataset.sequences
    lengths = np.fromiter((len(s) for s in sequences.items), dtype=np.int64, count=len(sequences))
    n_users, n_items = len(sequences), len(dataset.items)
    n_interactions = int(lengths.sum())
    used: set[str] = set()
    repeated = 0
    for seq in sequences.items:
        repeated += len(seq) - len(set(seq))
        used.update(seq)
    split = leave_one_out(dataset)  # the very split models use, so the counts agree
    return {
        "name": dataset.name,
        "users": n_users,
        "items": n_items,
        "interactions": n_interactions,
        "density": n_interactions / (n_users * n_items) if n_users and n_items else 0.0,
        "sequence_length": _length_summary(lengths),
        "repeated_interactions": repeated,
        "field_coverage": dataset.items.coverage(),
        "leave_one_out": {
            "users_without_test_case": split.skipped.get("test", 0),
            "users_without_valid_case": split.skipped.get("valid", 0),
            "test_cases": len(split.test),
            "valid_cases": len(split.valid),
        },
        "items_never_interacted": sum(1 for item in dataset.items.item_ids if item not in used),
        "timestamps": _presence(sequences.timestamps),
        "ratings": _presence(sequences.ratings),
    }
