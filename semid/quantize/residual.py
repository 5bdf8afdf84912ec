"""Residual quantization with k-means codebooks (RQ-KMeans).

Level ``l`` clusters the residuals left by levels ``0..l-1``; an item's code
is the index of its nearest centroid at every level, and its reconstruction
is the sum of those centroids.
"""

from __future__ import annotations

import logging

import numpy as np
from tqdm.auto import tqdm

from .kmeans import kmeans, nearest

__all__ = ["fit_residual_codebooks", "residual_encode", "residual_decode"]

logger = logging.getLogger(__name__)


def fit_residual_codebooks(
    x: np.ndarray,
    n_levels: int,
    codebook_size: int,
    *,
    n_iter: int = 20,
    seed: int = 0,
    balanced: bool = False,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Learn one k-means codebook per level on successive residuals.

    Args:
        x: ``float32 (n, d)`` item vectors.
        n_levels: number of levels ``L``.
        codebook_size: centroids per level ``K`` (``n >= K``).
        n_iter, seed, balanced: see :func:`semid.quantize.kmeans`; level ``l``
            uses seed ``seed + l``.

    Returns:
        ``(codebooks float32 (L, K, d), codes int64 (n, L))``.
    """
    residual = np.array(x, dtype=np.float32, copy=True)
    codebooks = np.zeros((n_levels, codebook_size, x.shape[1]), dtype=np.float32)
    codes = np.zeros((x.shape[0], n_levels), dtype=np.int64)
    for level in tqdm(range(n_levels), desc="rq-kmeans levels", disable=not progress, leave=False):
        centroids, assignment = kmeans(residual, codebook_size, n_iter=n_iter, seed=seed + level, balanced=balanced)
        codebooks[level] = centroids
        codes[:, level] = assignment
        residual -= centroids[assignment]
        logger.debug("level %d: mean squared residual %.5f", level, float((residual**2).sum(1).mean()))
    return codebooks, codes


def residual_encode(x: np.ndarray, codebooks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy residual encoding of ``x`` with fixed codebooks.

    Args:
        x: ``float32 (n, d)``.
        codebooks: ``float32 (L, K, d)``.

    Returns:
        ``(codes int64 (n, L), final residual float32 (n, d))``.
    """
    residual = np.array(x, dtype=np.float32, copy=True)
    codes = np.zeros((x.shape[0], codebooks.shape[0]), dtype=np.int64)
    for level, centroids in enumerate(codebooks):
        idx, _ = nearest(residual, centroids)
        codes[:, level] = idx
        residual -= centroids[idx]
    return codes, residual


def residual_decode(codes: np.ndarray, codebooks: np.ndarray) -> np.ndarray:
    """Sum of the chosen centroids: ``int (n, L)`` codes -> ``float32 (n, d)``."""
    out = np.zeros((codes.shape[0], codebooks.shape[2]), dtype=np.float32)
    for level in range(codebooks.shape[0]):
        out += codebooks[level][codes[:, level]]
    return out
