"""Sparse co-occurrence graphs and hierarchical spectral clustering (for CID).

Memory stays proportional to the number of co-occurring pairs, never to
``n_items ** 2``: the graph is a ``scipy.sparse`` CSR matrix and each split
uses the leading eigenvectors of the normalized adjacency
``D^-1/2 A D^-1/2`` from ARPACK (``eigsh``), followed by the deterministic
``cluster_qr`` assignment (Damle, Minden & Ying 2019) also used by the
reference CID code through scikit-learn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from threadpoolctl import threadpool_limits

__all__ = ["cooccurrence_graph", "hierarchical_spectral_clusters", "spectral_split"]

logger = logging.getLogger(__name__)

#: Below this many nodes a dense eigendecomposition is faster than ARPACK.
DENSE_LIMIT = 600


def cooccurrence_graph(sequences: Sequence[Sequence[int]], n_items: int, *, window: int = 0) -> sp.csr_matrix:
    """Symmetric item co-occurrence counts from item-index sequences.

    Args:
        sequences: per user, item row indices (training data only).
        n_items: number of rows/columns.
        window: count pairs at most this far apart in a sequence (0 = whole
            sequence, as in the paper).

    Returns:
        ``float32 (n_items, n_items)`` CSR matrix, zero diagonal. With
        ``window=0`` entry ``(i, j)`` is the number of users who have both items,
        computed as ``B.T @ B`` for the binary user x item matrix ``B``: one sparse
        product instead of a Python loop over pairs.
    """
    if window == 0:
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        cols = np.fromiter((i for s in sequences for i in s), dtype=np.int64, count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(sequences)), lengths)
        incidence = sp.csr_matrix((np.ones(cols.size, dtype=np.float32), (rows, cols)), shape=(len(sequences), n_items))
        incidence.data[:] = 1.0  # duplicates were summed; a user counts once per item
        graph = (incidence.T @ incidence).tocsr()
        graph.setdiag(0)
        graph.eliminate_zeros()
        return graph.astype(np.float32)
    pair_rows, pair_cols = [], []
    for seq in sequences:
        items = np.asarray(seq, dtype=np.int64)
        for gap in range(1, min(window, items.size - 1) + 1):
            a, b = items[:-gap], items[gap:]
            keep = a != b
            pair_rows.append(a[keep])
            pair_cols.append(b[keep])
    if not pair_rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    r, c = np.concatenate(pair_rows), np.concatenate(pair_cols)
    data = np.ones(r.size * 2, dtype=np.float32)
    graph = sp.coo_matrix((data, (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(n_items, n_items)).tocsr()
    graph.sum_duplicates()
    return graph


def _cluster_qr(vectors: np.ndarray) -> np.ndarray:
    """Deterministic labels from an ``(n, k)`` spectral embedding (column-pivoted QR)."""
    k = vectors.shape[1]
    _, _, pivots = scipy.linalg.qr(vectors.T, pivoting=True, mode="economic")
    u, _, vt = scipy.linalg.svd(vectors[pivots[:k], :].T)
    return np.abs(vectors @ (u @ vt.conj())).argmax(axis=1)


def spectral_split(graph: sp.csr_matrix, n_clusters: int, *, seed: int = 0) -> np.ndarray:
    """Split the nodes of ``graph`` into at most ``n_clusters`` groups (see :func:`_spectral_split`).

    BLAS runs single-threaded here: ARPACK's small dense steps gain nothing from
    threads, and oversubscribed busy-waiting threads can make them many times slower.
    """
    with threadpool_limits(1):
        return _spectral_split(graph, n_clusters, seed=seed)


def _spectral_split(graph: sp.csr_matrix, n_clusters: int, *, seed: int = 0) -> np.ndarray:
    """Split the nodes of ``graph`` into at most ``n_clusters`` groups.

    Returns ``int64 (n_nodes,)`` labels. Nodes without edges go to the group of
    their nearest spectral vector (all-zero rows: group 0 of the assignment).
    """
    n = graph.shape[0]
    k = min(n_clusters, n)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    positive = degree > 0
    inv_sqrt[positive] = 1.0 / np.sqrt(degree[positive])
    scaling = sp.diags(inv_sqrt)
    normalized = (scaling @ graph @ scaling).astype(np.float64)
    if n <= DENSE_LIMIT:
        _, vectors = scipy.linalg.eigh(normalized.toarray(), subset_by_index=[n - k, n - 1])
    else:
        v0 = np.random.default_rng(seed).uniform(-1, 1, n)
        # Shift by the identity so the wanted eigenvalues (largest of the normalized
        # adjacency, in [-1, 1]) are the largest in magnitude, which ARPACK finds fastest.
        shifted = normalized + sp.identity(n, format="csr")
        try:
            values, vectors = eigsh(shifted, k=k, which="LA", v0=v0, tol=1e-4, ncv=min(n, max(2 * k + 1, 40)))
        except ArpackNoConvergence as exc:
            logger.warning("ARPACK did not fully converge on %d nodes; using %d converged vectors", n, exc.eigenvectors.shape[1])
            vectors = exc.eigenvectors
            if vectors.shape[1] == 0:
                return np.zeros(n, dtype=np.int64)
    # Spectral clustering on the random-walk embedding (rows scaled by D^-1/2).
    embedding = vectors * inv_sqrt[:, None]
    return _cluster_qr(embedding).astype(np.int64)


def hierarchical_spectral_clusters(
    graph: sp.csr_matrix,
    nodes: np.ndarray,
    *,
    n_clusters: int,
    max_group_size: int,
    seed: int = 0,
    progress=None,
) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """Recursively split ``nodes`` until every group holds at most ``max_group_size``.

    Returns a list of ``(path, members)``: ``path`` is the tuple of cluster labels
    (each in ``[0, n_clusters)``) from the top, ``members`` the node indices of the
    group, in ascending order. Groups already small enough are not split, so
    paths have different lengths. When a spectral split fails to separate a
    group (one cluster takes everything, e.g. a graph without edges), the group
    is cut into ``n_clusters`` chunks of a seeded permutation so recursion always
    terminates.
    """
    rng = np.random.default_rng(seed)
    out: list[tuple[tuple[int, ...], np.ndarray]] = []
    queue: list[tuple[tuple[int, ...], np.ndarray]] = [((), np.sort(nodes))]
    while queue:
        path, members = queue.pop(0)
        if members.size <= max_group_size:
            out.append((path, members))
            continue
        sub = graph[members][:, members]
        labels = spectral_split(sub, n_clusters, seed=seed) if sub.nnz else np.zeros(members.size, dtype=np.int64)
        _, labels = np.unique(labels, return_inverse=True)  # dense 0..m-1, order of first label
        if labels.max(initial=0) == 0:
            chunks = np.array_split(rng.permutation(members.size), n_clusters)
            labels = np.empty(members.size, dtype=np.int64)
            for c, chunk in enumerate(chunks):
                labels[chunk] = c
        for c in range(int(labels.max()) + 1):
            part = members[labels == c]
            if part.size:
                queue.append(((*path, c), part))
        if progress is not None:
            progress.update(1)
    out.sort(key=lambda entry: entry[0])
    return out
