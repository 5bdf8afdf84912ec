"""SemID: the category path as hierarchical tokens plus a within-leaf index.

Following "How to Index Item IDs" (semantic indexing), an item with category
path ``Beauty > Makeup > Lips`` gets ``<a_Beauty><b_Makeup><c_Lips><d_5>``:
one token per depth (each depth has its own table of category names, shown as
labels), then its number among the items of the same leaf. Shorter paths are
padded with a ``<pad>`` token so the index always sits at the last level.

Collision policy: the within-leaf index numbers items of a leaf (0, 1, ... in
item order), so codes are unique by construction; the count of items that
shared a leaf with an earlier item is recorded as collisions resolved.

Cold start: an unseen item with a known category path gets the path plus the
next free index of its leaf (a code no fitted item has).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..data.importers._common import parse_categories
from ..errors import DataError
from ..params import Param, at_least
from ..registry import register
from ..tokenizer import PAD_LABEL, Code, FitInputs, FitResult, ItemTokenizer
from ..vocab import CodeVocab

__all__ = ["CategoryTokenizer"]


@register
class CategoryTokenizer(ItemTokenizer):
    """Category-tree indexing (the paper's SemID)."""

    scheme = "category"
    requires = frozenset({"categories"})
    supports_cold_start = True
    collision_policy = "within-leaf index appended as the last level"
    description = "SemID: category path tokens + within-leaf index"
    params = {
        "seed": Param("seed", 0, "unused (deterministic)"),
        "max_depth": Param("max_depth", 0, "keep at most this many path levels (0 = all)", check=at_least(0)),
    }

    def _paths(self, inputs: FitInputs) -> list[tuple[str, ...]]:
        max_depth = self._params["max_depth"] or None
        paths = []
        for item_id, value in zip(inputs.items.item_ids, inputs.items.field("categories")):
            path = parse_categories(value)
            if not path:
                raise DataError(f"scheme 'category': item {item_id!r} has no usable category path ({value!r})")
            paths.append(tuple(path[:max_depth]))
        return paths

    def _path_codes(self, paths: list[tuple[str, ...]]) -> tuple[np.ndarray, list[int], list[list[str]]]:
        depth = max(len(p) for p in paths)
        tables = [sorted({p[d] for p in paths if len(p) > d}) for d in range(depth)]
        index = [{name: i for i, name in enumerate(t)} for t in tables]
        codes = np.empty((len(paths), depth), dtype=np.int32)
        sizes, labels = [], []
        for d in range(depth):
            pad = len(tables[d])
            codes[:, d] = [index[d][p[d]] if len(p) > d else pad for p in paths]
            needs_pad = bool((codes[:, d] == pad).any())
            sizes.append(pad + int(needs_pad))
            labels.append(tables[d] + ([PAD_LABEL] if needs_pad else []))
        return codes, sizes, labels

    def _fit_prefix(self, inputs: FitInputs) -> FitResult:
        codes, sizes, labels = self._path_codes(self._paths(inputs))
        return FitResult(codes=codes, vocab=CodeVocab(sizes), labels=labels)

    def _fit(self, inputs: FitInputs) -> FitResult:
        paths = self._paths(inputs)
        codes, sizes, labels = self._path_codes(paths)
        _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        seen = np.zeros(counts.size, dtype=np.int64)
        within = np.empty(len(paths), dtype=np.int32)
        for row, group in enumerate(inverse):
            within[row] = seen[group]
            seen[group] += 1
        largest = int(counts.max())
        full = np.concatenate([codes, within[:, None]], axis=1)
        return FitResult(
            codes=full,
            vocab=CodeVocab([*sizes, largest]),
            collisions_resolved=int(len(paths) - counts.size),
            labels=[*labels, None],
            info={"n_leaves": int(counts.size), "largest_leaf": largest, "depth": len(sizes)},
        )

    def encode_new(self, item: Mapping[str, Any] | None = None, *, embedding: np.ndarray | None = None) -> Code:
        """Path tokens of an unseen item plus the next free index of its leaf."""
        self._require_fitted()
        path = parse_categories((item or {}).get("categories"))
        if not path:
            raise DataError("scheme 'category': encode_new needs an item with 'categories'")
        max_depth = self._params["max_depth"] or None
        path = tuple(path[:max_depth])
        n_path = self.vocab.n_levels - 1
        if len(path) > n_path:
            raise DataError(f"scheme 'category': path {list(path)} is deeper than the fitted tree ({n_path} levels)")
        prefix = []
        for depth in range(n_path):
            labels = self.vocab.labels[depth] or []
            name = path[depth] if depth < len(path) else PAD_LABEL
            if name not in labels:
                raise DataError(
                    f"scheme 'category': category {name!r} at depth {depth} is not in the fitted tree"
                )
            prefix.append(labels.index(name))
        node = self.trie.node(prefix)
        used = self.trie.children(node)[0] if node >= 0 else np.zeros(0)
        return (*prefix, int(used.max(initial=-1)) + 1)
