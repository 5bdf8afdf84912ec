"""A prefix trie over the valid codes of an index, stored as flat arrays.

Nodes are numbered with the root as ``0``; node ``n``'s children are the slice
``child_ptr[n]:child_ptr[n + 1]`` of ``child_index`` (the level-local index of
the next token, ascending) and ``child_node`` (the child's node id). This CSR
layout lets decoders look up the allowed continuations of many beams with a few
array gathers, with a cost per step that does not grow with the catalogue.

Codes may have different lengths: ``terminal_item[n]`` is the item position whose
code ends at node ``n`` (``-1`` when none). A code may be a prefix of another
(the trie is then not *prefix-free*); a generator must then emit an explicit end
token, allowed exactly where ``terminal_item >= 0``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .errors import ParameterError

__all__ = ["CodeTrie", "pad_codes"]


def pad_codes(codes: Sequence[Sequence[int]]) -> np.ndarray:
    """List of variable-length codes -> ``int32`` array ``(n, max_len)`` padded with ``-1``."""
    max_len = max((len(c) for c in codes), default=0)
    out = np.full((len(codes), max_len), -1, dtype=np.int32)
    for row, code in enumerate(codes):
        out[row, : len(code)] = code
    return out


class CodeTrie:
    """Trie of the codes in ``codes`` (``int`` array ``(n_items, L)``, ``-1`` padded).

    Row ``i`` is the code of item position ``i``. Codes must be unique and
    non-empty; padding must be trailing.

    Attributes:
        child_ptr: ``int64 (n_nodes + 1,)`` CSR row pointers.
        child_index: ``int32 (n_edges,)`` level-local index of each child.
        child_node: ``int64 (n_edges,)`` node id of each child.
        terminal_item: ``int64 (n_nodes,)`` item position ending at the node, or -1.
        node_depth: ``int32 (n_nodes,)`` number of tokens from the root.
    """

    def __init__(self, codes: np.ndarray):
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] == 0:
            raise ParameterError(f"codes must be a 2-d array (n_items, levels), got shape {codes.shape}")
        codes = codes.astype(np.int64, copy=False)
        lengths = (codes >= 0).sum(axis=1)
        if np.any(lengths == 0):
            raise ParameterError(f"item position {int(np.argmin(lengths))} has an empty code")
        valid = np.arange(codes.shape[1])[None, :] < lengths[:, None]
        if np.any((codes >= 0) != valid):
            bad = int(np.nonzero(((codes >= 0) != valid).any(axis=1))[0][0])
            raise ParameterError(f"code of item position {bad} has padding before its end: {codes[bad].tolist()}")
        n_items, n_levels = codes.shape
        self.n_items = n_items
        self.n_levels = n_levels
        self.lengths = lengths.astype(np.int32)

        node_of_item = np.zeros(n_items, dtype=np.int64)  # current node of each item's path
        parents, indices, children = [], [], []
        depths = [np.zeros(1, dtype=np.int32)]
        n_nodes = 1
        for level in range(n_levels):
            active = np.nonzero(lengths > level)[0]
            if active.size == 0:
                break
            width = int(codes[active, level].max()) + 1
            key = node_of_item[active] * width + codes[active, level]
            unique, inverse = np.unique(key, return_inverse=True)
            new_ids = n_nodes + np.arange(unique.size, dtype=np.int64)
            parents.append(unique // width)
            indices.append(unique % width)
            children.append(new_ids)
            depths.append(np.full(unique.size, level + 1, dtype=np.int32))
            node_of_item[active] = new_ids[inverse]
            n_nodes += unique.size

        parent = np.concatenate(parents)
        # Edges are already grouped by parent within a level and parents of a level
        # precede their children; a stable sort by parent gives CSR order.
        order = np.lexsort((np.concatenate(indices), parent))
        self.child_index = np.concatenate(indices)[order].astype(np.int32)
        self.child_node = np.concatenate(children)[order].astype(np.int64)
        self.child_ptr = np.zeros(n_nodes + 1, dtype=np.int64)
        np.add.at(self.child_ptr, parent[order] + 1, 1)
        np.cumsum(self.child_ptr, out=self.child_ptr)
        self.node_depth = np.concatenate(depths)
        self.terminal_item = np.full(n_nodes, -1, dtype=np.int64)
        ends = node_of_item
        if np.unique(ends).size != n_items:
            uniq, counts = np.unique(ends, return_counts=True)
            dup_node = uniq[counts > 1][0]
            dup_items = np.nonzero(ends == dup_node)[0][:5].tolist()
            raise ParameterError(f"codes are not unique: item positions {dup_items} share a code")
        self.terminal_item[ends] = np.arange(n_items)
        self.item_node = ends

    # -- sizes ----------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return int(self.node_depth.size)

    def __len__(self) -> int:
        return self.n_items

    @property
    def max_branching(self) -> int:
        return int(np.diff(self.child_ptr).max(initial=0))

    @property
    def is_prefix_free(self) -> bool:
        """True when no code is a proper prefix of another (no end token needed)."""
        has_children = np.diff(self.child_ptr) > 0
        return not bool(np.any(has_children & (self.terminal_item >= 0)))

    @property
    def fixed_length(self) -> bool:
        return bool(np.all(self.lengths == self.lengths[0]))

    # -- lookups ----------------------------------------------------------------
    def children(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, nodes)`` of the children of ``node``."""
        lo, hi = self.child_ptr[node], self.child_ptr[node + 1]
        return self.child_index[lo:hi], self.child_node[lo:hi]

    def step(self, node: int, index: int) -> int:
        """Child of ``node`` along ``index``, or -1 when that token is not allowed."""
        lo, hi = int(self.child_ptr[node]), int(self.child_ptr[node + 1])
        pos = lo + int(np.searchsorted(self.child_index[lo:hi], index))
        if pos < hi and self.child_index[pos] == index:
            return int(self.child_node[pos])
        return -1

    def node(self, prefix: Sequence[int]) -> int:
        """Node reached by ``prefix`` (root for ``()``), or -1 when it is not a valid prefix."""
        node = 0
        for index in prefix:
            node = self.step(node, int(index))
            if node < 0:
                return -1
        return node

    def allowed(self, prefix: Sequence[int]) -> np.ndarray:
        """Level-local indices that may follow ``prefix`` (empty when none or invalid)."""
        node = self.node(prefix)
        if node < 0:
            return np.zeros(0, dtype=np.int32)
        return self.children(node)[0].copy()

    def is_prefix(self, prefix: Sequence[int]) -> bool:
        return self.node(prefix) >= 0

    def item_at(self, code: Sequence[int]) -> int:
        """Item position whose code is exactly ``code``, or -1."""
        node = self.node(code)
        return int(self.terminal_item[node]) if node >= 0 else -1

    def __contains__(self, code: object) -> bool:
        try:
            return self.item_at(code) >= 0  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    def iter_codes(self) -> Iterator[tuple[tuple[int, ...], int]]:
        """Yield ``(code, item_position)`` for every code, depth-first in index order."""
        stack: list[tuple[int, tuple[int, ...]]] = [(0, ())]
        while stack:
            node, prefix = stack.pop()
            if self.terminal_item[node] >= 0:
                yield prefix, int(self.terminal_item[node])
            indices, nodes = self.children(node)
            for index, child in zip(indices[::-1].tolist(), nodes[::-1].tolist()):
                stack.append((child, prefix + (index,)))

    def padded_children(self) -> tuple[np.ndarray, np.ndarray]:
        """Children as dense ``(n_nodes, max_branching)`` arrays padded with -1.

        Returns ``(indices int32, nodes int64)``; convenient for batched decoding.
        """
        width = max(self.max_branching, 1)
        counts = np.diff(self.child_ptr)
        rows = np.repeat(np.arange(self.n_nodes), counts)
        cols = np.arange(self.child_index.size) - np.repeat(self.child_ptr[:-1], counts)
        indices = np.full((self.n_nodes, width), -1, dtype=np.int32)
        nodes = np.full((self.n_nodes, width), -1, dtype=np.int64)
        indices[rows, cols] = self.child_index
        nodes[rows, cols] = self.child_node
        return indices, nodes
