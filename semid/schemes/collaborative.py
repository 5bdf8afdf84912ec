"""CID: collaborative indexing by hierarchical spectral clustering of co-occurrence.

Following "How to Index Item IDs" (collaborative indexing): build the item
co-occurrence graph from *training* sequences only, split it into
``n_clusters`` groups by spectral clustering, split again every group larger
than ``max_group_size``, and finish each item's code with its index inside its
final group. Items that never occur in training (cold items: their only
interactions are held out) have no edges; they form one extra top-level group,
cut into chunks when large, so held-out data never shapes the clusters.

Code layout (variable length): ``(c_1, ..., c_d, n_clusters' + i)`` where
``c_j`` are cluster tokens and the last token is the within-group index
``i`` shifted past the level's cluster tokens, so cluster and index tokens
never coincide at a level. Unlike the reference implementation this never
materializes a dense item x item matrix (see :mod:`semid.spectral`).

Collision policy: the within-group index makes codes unique by construction;
the number of items that shared a leaf group with an earlier item is recorded.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from ..params import Param, at_least
from ..registry import register
from ..spectral import cooccurrence_graph, hierarchical_spectral_clusters
from ..tokenizer import PAD_LABEL, FitInputs, FitResult, ItemTokenizer
from ..vocab import CodeVocab

__all__ = ["CollaborativeTokenizer"]


@register
class CollaborativeTokenizer(ItemTokenizer):
    """Collaborative indexing (the paper's CID)."""

    scheme = "collaborative"
    libraries = ("scipy",)
    requires = frozenset({"sequences"})
    collision_policy = "within-group index appended as the last level"
    description = "CID: hierarchical spectral clustering of the training co-occurrence graph"
    params = {
        "seed": Param("seed", 0, "seed for ARPACK start vectors and random choices"),
        "n_clusters": Param("n_clusters", 20, "clusters per split (paper: 10 or 20)", check=at_least(2)),
        "max_group_size": Param("max_group_size", 500, "largest final group (paper's k; 500 best on Beauty)", check=at_least(2)),
        "last_token": Param("last_token", "sequential", "within-group numbering", choices=("sequential", "random")),
        "window": Param("window", 0, "co-occurrence window in a sequence (0 = whole sequence)", check=at_least(0)),
    }

    def _groups(self, inputs: FitInputs) -> tuple[list[tuple[tuple[int, ...], np.ndarray]], bool, int]:
        n_items = len(inputs.items)
        position = inputs.items.index
        sequences = [[position[i] for i in seq] for seq in inputs.sequences or []]
        graph = cooccurrence_graph(sequences, n_items, window=self._params["window"])
        seen = np.zeros(n_items, dtype=bool)
        for seq in sequences:
            seen[seq] = True
        n_clusters, max_group = self._params["n_clusters"], self._params["max_group_size"]
        with tqdm(desc="spectral splits", unit="split", disable=n_items < 5000) as bar:
            groups = hierarchical_spectral_clusters(
                graph, np.nonzero(seen)[0], n_clusters=n_clusters, max_group_size=max_group,
                seed=self.seed, progress=bar,
            ) if seen.any() else []
        unseen = np.nonzero(~seen)[0]
        has_unseen = unseen.size > 0
        if has_unseen:
            # Cold items: one extra top-level cluster (token n_clusters), chunked if large.
            rng = np.random.default_rng(self.seed)
            cold = self._chunk(unseen, rng)
            groups.extend(((n_clusters, *path), members) for path, members in cold)
        return groups, has_unseen, int(graph.nnz // 2)

    def _chunk(self, members: np.ndarray, rng: np.random.Generator) -> list[tuple[tuple[int, ...], np.ndarray]]:
        n_clusters, max_group = self._params["n_clusters"], self._params["max_group_size"]
        if members.size <= max_group:
            return [((), members)]
        out = []
        for c, part in enumerate(np.array_split(members, n_clusters)):
            out.extend(((c, *path), m) for path, m in self._chunk(part, rng))
        return out

    def _cluster_tokens(self, level: int, has_unseen: bool) -> int:
        return self._params["n_clusters"] + int(has_unseen and level == 0)

    def _fit(self, inputs: FitInputs) -> FitResult:
        groups, has_unseen, n_edges = self._groups(inputs)
        rng = np.random.default_rng(self.seed)
        depth = max(len(path) for path, _ in groups)
        largest = max(m.size for _, m in groups)
        codes = np.full((len(inputs.items), depth + 1), -1, dtype=np.int32)
        for path, members in groups:
            order = members if self._params["last_token"] == "sequential" else rng.permutation(members)
            level = len(path)
            codes[order, :level] = path
            codes[order, level] = self._cluster_tokens(level, has_unseen) + np.arange(order.size)
        sizes = [self._cluster_tokens(level, has_unseen) + largest for level in range(depth + 1)]
        labels = [
            [f"c{c}" for c in range(self._cluster_tokens(level, has_unseen))] + [f"#{i}" for i in range(largest)]
            for level in range(depth + 1)
        ]
        return FitResult(
            codes=codes,
            vocab=CodeVocab(sizes),
            collisions_resolved=int(len(inputs.items) - len(groups)),
            labels=labels,
            info={"n_groups": len(groups), "largest_group": int(largest), "depth": depth, "graph_edges": n_edges,
                  "cold_items": int(sum(m.size for p, m in groups if has_unseen and p and p[0] == self._params["n_clusters"]))},
        )

    def _fit_prefix(self, inputs: FitInputs) -> FitResult:
        groups, has_unseen, _ = self._groups(inputs)
        depth = max(max(len(path) for path, _ in groups), 1)
        codes = np.empty((len(inputs.items), depth), dtype=np.int32)
        for path, members in groups:
            for level in range(depth):
                codes[members, level] = path[level] if level < len(path) else self._cluster_tokens(level, has_unseen)
        sizes = [self._cluster_tokens(level, has_unseen) + 1 for level in range(depth)]
        labels = [[f"c{c}" for c in range(sizes[level] - 1)] + [PAD_LABEL] for level in range(depth)]
        return FitResult(codes=codes, vocab=CodeVocab(sizes), labels=labels)
