"""Collaborative indexing (CID) at 100k items on a synthetic power-law co-occurrence graph.

Users draw sequence lengths from a power law; each user belongs to one latent
community and takes most items from it, with Zipf popularity inside
communities, so the graph has both heavy-tailed degrees and cluster structure.
Records time and peak memory in ``benchmarks/results/cid_scale.md``. A dense
item x item float64 matrix, as the reference code builds, would need
``8 * n_items**2`` bytes (80 GB at 100k items).

    .venv/bin/python benchmarks/bench_cid_scale.py [--items 100000] [--users 150000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _env import peak_rss_mb, stamp  # noqa: E402


def synthetic_sequences(n_items: int, n_users: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    community_size = 500
    n_communities = n_items // community_size
    lengths = np.minimum(3 + rng.pareto(1.5, n_users).astype(np.int64) * 2, 200)
    communities = rng.integers(0, n_communities, n_users)
    ranks = np.arange(1, community_size + 1, dtype=np.float64)
    zipf = ranks ** -1.1
    zipf /= zipf.sum()
    global_pop = np.arange(1, n_items + 1, dtype=np.float64) ** -0.9
    global_pop /= global_pop.sum()
    total = int(lengths.sum())
    owner = np.repeat(np.arange(n_users), lengths)
    local = communities[owner] * community_size + rng.choice(community_size, size=total, p=zipf)
    noise = rng.choice(n_items, size=total, p=global_pop)
    drawn = np.where(rng.random(total) < 0.8, local, noise)
    sequences = np.split(drawn, np.cumsum(lengths)[:-1])
    return sequences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=150_000)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--max-group-size", type=int, default=500)
    args = parser.parse_args()

    from semid.spectral import cooccurrence_graph, hierarchical_spectral_clusters

    started = time.perf_counter()
    sequences = synthetic_sequences(args.items, args.users)
    t_data = time.perf_counter() - started
    n_interactions = int(sum(s.size for s in sequences))
    started = time.perf_counter()
    graph = cooccurrence_graph(sequences, args.items)
    t_graph = time.perf_counter() - started
    rss_graph = peak_rss_mb()
    seen = np.zeros(args.items, dtype=bool)
    for s in sequences:
        seen[s] = True
    started = time.perf_counter()
    groups = hierarchical_spectral_clusters(
        graph, np.nonzero(seen)[0], n_clusters=args.clusters, max_group_size=args.max_group_size, seed=0
    )
    t_cluster = time.perf_counter() - started
    depth = max(len(p) for p, _ in groups)
    largest = max(m.size for _, m in groups)
    degrees = np.diff(graph.indptr)
    report = [
        "# CID at scale: synthetic power-law co-occurrence graph",
        "",
        stamp(),
        f"- items: {args.items:,} ({int(seen.sum()):,} with interactions); users: {args.users:,}; "
        f"interactions: {n_interactions:,}",
        f"- graph: {graph.nnz // 2:,} undirected edges; degree median {int(np.median(degrees))}, "
        f"p99 {int(np.percentile(degrees, 99))}, max {int(degrees.max())}",
        f"- settings: N = {args.clusters} clusters per split, max group size k = {args.max_group_size}",
        "",
        "| step | seconds | peak RSS after (MiB) |",
        "|---|---|---|",
        f"| generate synthetic sequences | {t_data:.1f} | - |",
        f"| co-occurrence graph (sparse B^T B) | {t_graph:.1f} | {rss_graph:.0f} |",
        f"| hierarchical spectral clustering | {t_cluster:.1f} | {peak_rss_mb():.0f} |",
        "",
        f"Result: {len(groups):,} final groups, depth up to {depth}, largest group {largest}. "
        f"A dense float64 item x item matrix would need {8 * args.items**2 / 1e9:.0f} GB.",
    ]
    text = "\n".join(report) + "\n"
    (HERE / "results" / "cid_scale.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
