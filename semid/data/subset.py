"""Derived datasets: the most popular items and/or a seeded sample of users, k-core filtered.

Full-size benchmarks (Amazon Beauty: 22k users, 12k items) take hours for an LLM
generator on a CPU. :func:`subset_dataset` cuts a dataset down reproducibly so that
every model in a comparison can be trained to convergence on the same smaller
problem: keep the ``top_items`` most interacted items (ties broken by item order),
optionally a seeded sample of ``users``, drop the other items from every
sequence (order and timestamps kept), then repeat the k-core filter (users with
fewer than ``min_user_interactions``, items with fewer than
``min_item_interactions``) until nothing changes. The result records how it was
derived in ``source["derived_from"]``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from semid.errors import DataError, ParameterError

from .dataset import Dataset, ItemTable, Sequences

__all__ = ["subset_dataset"]


def _check_count(name: str, value: int | None, *, minimum: int) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < minimum):
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")


def subset_dataset(
    dataset: Dataset,
    *,
    top_items: int | None = None,
    users: int | None = None,
    min_user_interactions: int = 5,
    min_item_interactions: int = 5,
    seed: int = 0,
    name: str | None = None,
) -> Dataset:
    """A smaller dataset derived from ``dataset`` (see the module docstring).

    Args:
        top_items: keep only the this many most frequent items (``None``: all).
        users: keep a seeded uniform sample of this many users before filtering
            (``None``: all).
        min_user_interactions, min_item_interactions: k-core thresholds (1 = off).
        seed: seed of the user sample.
        name: name of the new dataset (default ``"<name>-subset"``).

    Raises:
        ParameterError: a count is not a positive integer.
        DataError: nothing survives the filters.
    """
    _check_count("top_items", top_items, minimum=1)
    _check_count("users", users, minimum=1)
    _check_count("min_user_interactions", min_user_interactions, minimum=1)
    _check_count("min_item_interactions", min_item_interactions, minimum=1)
    seqs = dataset.sequences
    order = {item_id: i for i, item_id in enumerate(dataset.items.item_ids)}

    rows = list(range(len(seqs)))
    if users is not None and users < len(rows):
        rng = np.random.default_rng(seed)
        rows = sorted(rng.choice(len(rows), size=users, replace=False).tolist())

    counts = Counter(item for u in rows for item in seqs.items[u])
    ranked = sorted(counts, key=lambda item: (-counts[item], order[item]))
    keep = set(ranked[:top_items] if top_items is not None else ranked)

    positions = {u: [p for p, item in enumerate(seqs.items[u]) if item in keep] for u in rows}
    while True:
        positions = {u: p for u, p in positions.items() if len(p) >= min_user_interactions}
        counts = Counter(seqs.items[u][p] for u, ps in positions.items() for p in ps)
        rare = {item for item in keep if counts[item] < min_item_interactions}
        if not rare:
            break
        keep -= rare
        positions = {u: [p for p in ps if seqs.items[u][p] in keep] for u, ps in positions.items()}
    if not positions or not keep:
        raise DataError(
            f"subset of {dataset.name!r} is empty: top_items={top_items}, users={users}, "
            f"k-core {min_user_interactions}/{min_item_interactions} removed every user; "
            "ask for more items or users, or lower the thresholds"
        )

    def pick(values: list[Any] | None, ps: list[int]) -> list[Any] | None:
        return None if values is None else [values[p] for p in ps]

    kept_rows = sorted(positions)
    new_seqs = Sequences(
        user_ids=[seqs.user_ids[u] for u in kept_rows],
        items=[[seqs.items[u][p] for p in positions[u]] for u in kept_rows],
        timestamps=[pick(seqs.timestamps[u], positions[u]) for u in kept_rows],
        ratings=[pick(seqs.ratings[u], positions[u]) for u in kept_rows],
    )
    items = ItemTable([record for record in dataset.items.records if record["item_id"] in keep])
    source = dict(dataset.source)
    source["derived_from"] = {
        "dataset": dataset.name,
        "path": str(dataset.path) if dataset.path is not None else None,
        "top_items": top_items,
        "users": users,
        "min_user_interactions": min_user_interactions,
        "min_item_interactions": min_item_interactions,
        "seed": seed,
    }
    id_map = None
    if dataset.id_map is not None:
        id_map = {original: new for original, new in dataset.id_map.items() if new in keep}
    return Dataset(
        name=name or f"{dataset.name}-subset",
        items=items,
        sequences=new_seqs,
        source=source,
        id_map=id_map,
    )
