"""Seeded k-means for codebooks: plain (faiss) or balanced (k-means-constrained).

Both return ``(centroids float32 (k, d), assignment int64 (n,))``. Plain k-means
uses faiss with a fixed seed and one restart, training on at most 256 points
per centroid (faiss's default sample), deterministic for a given thread count. Balanced k-means caps every cluster at ``ceil(n / k)`` members
(min-cost-flow assignment), which removes first-level collapse by construction
at the price of a much slower fit; use it for small and medium catalogues.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ..errors import ParameterError

__all__ = ["kmeans", "nearest"]

logger = logging.getLogger(__name__)


def nearest(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact nearest centroid of each row.

    Args:
        x: ``float32 (n, d)``.
        centroids: ``float32 (k, d)``.

    Returns:
        ``(index int64 (n,), squared distance float32 (n,))``.
    """
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    dist, idx = index.search(x, 1)
    return idx[:, 0].astype(np.int64), dist[:, 0]


def kmeans(
    x: np.ndarray,
    k: int,
    *,
    n_iter: int = 20,
    seed: int = 0,
    balanced: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the rows of ``x`` into ``k`` groups.

    Args:
        x: ``float (n, d)`` points, ``n >= k``.
        k: number of clusters.
        n_iter: Lloyd iterations (balanced: the maximum).
        seed: random seed (initial centroids).
        balanced: cap cluster sizes at ``ceil(n / k)``.

    Returns:
        ``(centroids float32 (k, d), assignment int64 (n,))``.

    Raises:
        ParameterError: fewer points than clusters.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    if k < 1:
        raise ParameterError(f"k-means needs k >= 1, got {k}")
    if n < k:
        raise ParameterError(f"k-means with {k} clusters needs at least {k} points, got {n}")
    if balanced and k > 1:
        return _balanced(x, k, n_iter=n_iter, seed=seed)
    import faiss

    # faiss trains on a seeded sample of at most 256 points per centroid (all
    # points for Beauty-sized catalogues: 12k < 256 * 256); every point is then
    # assigned exactly, which keeps 1M-item fits in minutes.
    km = faiss.Kmeans(d, k, niter=n_iter, seed=seed, nredo=1, verbose=False, min_points_per_centroid=1)
    km.train(x)
    centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
    assignment, _ = nearest(x, centroids)
    return centroids, assignment


def _balanced(x: np.ndarray, k: int, *, n_iter: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from k_means_constrained import KMeansConstrained

    size_max = math.ceil(x.shape[0] / k)
    logger.debug("balanced k-means: %d points, %d clusters, size <= %d", x.shape[0], k, size_max)
    model = KMeansConstrained(
        n_clusters=k, size_min=None, size_max=size_max, max_iter=n_iter, n_init=1, random_state=seed, n_jobs=1
    )
    assignment = model.fit_predict(x.astype(np.float64)).astype(np.int64)
    centroids = np.zeros((k, x.shape[1]), dtype=np.float64)
    np.add.at(centroids, assignment, x)
    counts = np.bincount(assignment, minlength=k)[:, None]
    centroids = (centroids / np.maximum(counts, 1)).astype(np.float32)
    return centroids, assignment
