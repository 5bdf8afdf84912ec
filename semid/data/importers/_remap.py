"""Replacing item ids that leak time order.

P5-style preprocessing numbers items by first appearance while walking users
in order, so item ``1`` is older than item ``5000``. Any scheme that reads ids
(sequential indexing, collaborative clustering tie-breaks, row order) then sees
the future. The remedies, chosen by ``remap``:

- ``"asin"``: the item's natural key (its ASIN), which carries no order;
- ``"random"``: a seeded random permutation of ``0 .. n-1`` (as strings);
- ``"none"``: keep the original ids (only for reproducing leaky baselines).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ...errors import DataError, ParameterError

__all__ = ["REMAP_MODES", "remap_item_ids"]

REMAP_MODES = ("asin", "random", "none")


def remap_item_ids(
    original_ids: Sequence[str],
    *,
    mode: str,
    seed: int,
    natural_keys: Mapping[str, str] | None = None,
    where: str = "<items>",
) -> dict[str, str]:
    """Map each original id to its new id.

    Args:
        original_ids: the ids to remap, in the importer's order (the random
            permutation is applied to this order, so it must be deterministic).
        mode: one of :data:`REMAP_MODES`.
        seed: seed of the ``"random"`` permutation.
        natural_keys: original id -> natural key (ASIN), needed by ``"asin"``.
        where: file named in error messages.

    Returns:
        ``{original_id: new_id}`` covering every id in ``original_ids``.

    Raises:
        ParameterError: unknown ``mode``.
        DataError: ``"asin"`` and an id has no ASIN, or two ids share one.
    """
    if mode not in REMAP_MODES:
        raise ParameterError(f"remap must be one of {', '.join(REMAP_MODES)}; got {mode!r}")
    if mode == "none":
        return {i: i for i in original_ids}
    if mode == "random":
        permutation = np.random.default_rng(seed).permutation(len(original_ids))
        return {i: str(int(p)) for i, p in zip(original_ids, permutation)}
    natural_keys = natural_keys or {}
    mapping: dict[str, str] = {}
    owner: dict[str, str] = {}
    for original in original_ids:
        key = natural_keys.get(original)
        if not key:
            raise DataError(
                f"{where}: item {original!r} has no ASIN, so it cannot be remapped with "
                "remap='asin'; add it to the metadata or use remap='random'"
            )
        if key in owner:
            raise DataError(
                f"{where}: items {owner[key]!r} and {original!r} share the ASIN {key!r}; "
                "expected one ASIN per item"
            )
        owner[key] = original
        mapping[original] = key
    return mapping
