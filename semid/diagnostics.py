"""Diagnostics of a fitted index, for ``semid inspect`` and benchmarks.

:func:`learned_diagnostics` works on any tokenizer (it reads codes); learned
quantizers add reconstruction error and the collision rate before
resolution. Coherence compares the mean cosine similarity of items that share
a code prefix with that of random item pairs: a useful index puts similar
items under the same prefix, so the first number should be clearly higher.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError

__all__ = ["coherence", "learned_diagnostics", "level_usage", "plot_level_usage", "prefix_distribution"]

#: Pairs sampled per prefix length for coherence (fixed seed: deterministic output).
N_PAIRS = 20000


def level_usage(codes: np.ndarray, level_sizes: list[int]) -> list[dict[str, Any]]:
    """Per level: codes used, utilization, perplexity (exp of usage entropy), largest share.

    Args:
        codes: ``int (n, L)``, ``-1`` padded.
        level_sizes: size of each level.
    """
    out = []
    for level, size in enumerate(level_sizes):
        column = codes[:, level]
        column = column[column >= 0]
        counts = np.bincount(column, minlength=size).astype(np.float64) if column.size else np.zeros(size)
        total = counts.sum()
        if total:
            p = counts[counts > 0] / total
            perplexity = float(np.exp(-(p * np.log(p)).sum()))
            share = float(counts.max() / total)
        else:
            perplexity, share = 0.0, 0.0
        used = int((counts > 0).sum())
        out.append({
            "level": level, "size": int(size), "items": int(total), "used": used,
            "utilization": round(used / size, 4), "perplexity": round(perplexity, 2), "max_share": round(share, 4),
        })
    return out


def _prefix_groups(codes: np.ndarray, length: int) -> np.ndarray:
    """Group id ``int64 (n,)`` of each item's first ``length`` code values."""
    _, inverse = np.unique(codes[:, :length], axis=0, return_inverse=True)
    return inverse.reshape(-1)


def prefix_distribution(codes: np.ndarray) -> list[dict[str, Any]]:
    """Items per code prefix, for each prefix length ``1..L``."""
    out = []
    for length in range(1, codes.shape[1] + 1):
        counts = np.bincount(_prefix_groups(codes, length))
        out.append({
            "length": length,
            "prefixes": int(counts.size),
            "mean": round(float(counts.mean()), 3),
            "median": float(np.median(counts)),
            "p90": round(float(np.percentile(counts, 90)), 2),
            "max": int(counts.max()),
            "singleton_share": round(float((counts == 1).sum() / counts.size), 4),
        })
    return out


def coherence(codes: np.ndarray, vectors: np.ndarray, lengths: list[int], *, seed: int = 0) -> list[dict[str, Any]]:
    """Mean cosine of item pairs sharing a prefix vs random pairs, per prefix length.

    Args:
        codes: ``int (n, L)`` codes.
        vectors: ``float (n, d)`` item vectors in the same row order.
        lengths: prefix lengths to measure.
    """
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.maximum(norms, 1e-12)
    rng = np.random.default_rng(seed)
    n = len(unit)
    a = rng.integers(0, n, N_PAIRS)
    b = (a + rng.integers(1, max(n, 2), N_PAIRS)) % n
    random_cos = float(np.einsum("ij,ij->i", unit[a], unit[b]).mean()) if n > 1 else float("nan")
    out = []
    for length in lengths:
        groups = _prefix_groups(codes, length)
        order = np.argsort(groups, kind="stable")
        counts = np.bincount(groups)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        eligible = np.nonzero(counts[groups] >= 2)[0]
        if eligible.size == 0:
            out.append({"length": length, "pairs": 0, "same_prefix": None, "random": round(random_cos, 4)})
            continue
        i = eligible[rng.integers(0, eligible.size, N_PAIRS)]
        g = groups[i]
        # A different member of the same group: offset 1..count-1 from i's place in the group.
        place = np.empty(n, dtype=np.int64)
        place[order] = np.arange(n) - starts[groups[order]]
        shift = rng.integers(1, counts[g])
        j = order[starts[g] + (place[i] + shift) % counts[g]]
        same = float(np.einsum("ij,ij->i", unit[i], unit[j]).mean())
        out.append({"length": length, "pairs": int(N_PAIRS), "same_prefix": round(same, 4), "random": round(random_cos, 4)})
    return out


def _checked(name: str, matrix: Any, n: int) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != n:
        raise DataError(f"{name}: expected ({n}, dim) rows aligned with the index's items, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise DataError(f"{name}: holds NaN or infinite values")
    return matrix


def learned_diagnostics(tokenizer, embeddings: np.ndarray | None = None,
                        cf_embeddings: np.ndarray | None = None) -> dict[str, Any]:
    """Health report of a fitted index (JSON-serialisable dict).

    Args:
        tokenizer: a fitted :class:`~semid.tokenizer.ItemTokenizer` (any scheme).
        embeddings: optional ``float (n_items, d)`` text embeddings in the
            index's item order (coherence; reconstruction for learned schemes).
        cf_embeddings: optional ``float (n_items, d_cf)`` collaborative embeddings.

    Returns:
        ``levels`` (utilization, perplexity per level), ``collisions``
        (rate before resolution when the scheme records it, items resolved),
        ``prefixes`` (items per prefix), ``reconstruction`` (when known) and
        ``coherence`` (``text`` / ``cf`` lists, when vectors are given).
    """
    codes = tokenizer.codes
    n = len(tokenizer)
    info = getattr(tokenizer, "info_", {}) or {}
    semantic_levels = tokenizer.get_params().get("n_levels")
    semantic_levels = int(semantic_levels) if isinstance(semantic_levels, int) else codes.shape[1]
    semantic_levels = min(semantic_levels, codes.shape[1])
    report: dict[str, Any] = {
        "scheme": tokenizer.scheme,
        "n_items": n,
        "semantic_levels": semantic_levels,
        "levels": level_usage(codes, list(tokenizer.vocab.level_sizes)),
        "collisions": {
            "rate_before_resolution": info.get("collision_rate_before"),
            "resolved": int(tokenizer.collisions_resolved_),
            "policy": tokenizer.collision_policy,
        },
        "prefixes": prefix_distribution(codes),
    }
    reconstruction = {k: info[k] for k in ("recon_mse", "quant_mse") if k in info}
    if embeddings is not None:
        embeddings = _checked("embeddings", embeddings, n)
        if hasattr(tokenizer, "reconstruct"):
            recon = tokenizer.reconstruct(embeddings)
            reconstruction["recon_mse_given"] = round(float(np.mean((recon - embeddings) ** 2)), 6)
            cos = np.einsum("ij,ij->i", recon, embeddings) / np.maximum(
                np.linalg.norm(recon, axis=1) * np.linalg.norm(embeddings, axis=1), 1e-12)
            reconstruction["recon_cosine_given"] = round(float(cos.mean()), 4)
    report["reconstruction"] = reconstruction or None
    lengths = list(range(1, semantic_levels + 1))
    report["coherence"] = {
        "text": coherence(codes, embeddings, lengths) if embeddings is not None else None,
        "cf": coherence(codes, _checked("cf_embeddings", cf_embeddings, n), lengths) if cf_embeddings is not None else None,
    }
    if "curve" in info:
        report["training_curve_points"] = len(info["curve"])
    return report


def plot_level_usage(tokenizer, path: str | os.PathLike[str]) -> Path:
    """Save a PNG of sorted code usage per level (needs matplotlib: ``pip install semid[plot]``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DataError("plot_level_usage needs matplotlib; install it with: pip install matplotlib") from None
    codes = tokenizer.codes
    sizes = list(tokenizer.vocab.level_sizes)
    columns = min(len(sizes), 4)
    rows = math.ceil(len(sizes) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for level, size in enumerate(sizes):
        ax = axes[level // columns][level % columns]
        column = codes[:, level]
        counts = np.sort(np.bincount(column[column >= 0], minlength=size))[::-1]
        ax.bar(np.arange(size), counts, width=1.0)
        ax.set_title(f"level {level}: {int((counts > 0).sum())}/{size} used")
        ax.set_xlabel("code (sorted by usage)")
        ax.set_ylabel("items")
    for extra in range(len(sizes), rows * columns):
        axes[extra // columns][extra % columns].axis("off")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
