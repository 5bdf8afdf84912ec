"""Structural summary of an index: what ``semid inspect`` prints for every scheme.

Learned schemes add reconstruction and coherence diagnostics through
:mod:`semid.diagnostics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .tokenizer import ItemTokenizer

__all__ = ["index_summary"]


def _entropy_bits(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def index_summary(tokenizer: ItemTokenizer) -> dict[str, Any]:
    """JSON-serialisable summary: sizes, code lengths, collisions, per-level usage and branching.

    Per level ``l``: ``size`` (values in the vocab), ``used`` (distinct values
    occurring), ``usage`` (used / size), ``entropy_bits`` of the value
    distribution over items having that level and its ratio to ``log2(size)``,
    and the ``branching`` (children per trie node at depth ``l``: mean, max).
    """
    codes = tokenizer.codes
    trie = tokenizer.trie
    vocab = tokenizer.vocab
    lengths = (codes >= 0).sum(axis=1)
    children = np.diff(trie.child_ptr)
    levels = []
    for level, size in enumerate(vocab.level_sizes):
        column = codes[:, level]
        column = column[column >= 0]
        counts = np.bincount(column, minlength=size) if column.size else np.zeros(size, dtype=np.int64)
        at_depth = (trie.node_depth == level) & (children > 0)
        entropy = _entropy_bits(counts) if column.size else 0.0
        levels.append(
            {
                "level": level,
                "prefix": vocab.prefixes[level],
                "size": int(size),
                "items_with_level": int(column.size),
                "used": int((counts > 0).sum()),
                "usage": round(float((counts > 0).sum() / size), 6),
                "entropy_bits": round(entropy, 6),
                "entropy_ratio": round(entropy / np.log2(size), 6) if size > 1 else 1.0,
                "branching": {
                    "mean": round(float(children[at_depth].mean()), 4) if at_depth.any() else 0.0,
                    "max": int(children[at_depth].max()) if at_depth.any() else 0,
                },
            }
        )
    return {
        "scheme": tokenizer.scheme,
        "params": tokenizer.get_params(),
        "n_items": len(tokenizer),
        "n_tokens": vocab.n_tokens,
        "code_length": {
            "min": int(lengths.min()),
            "max": int(lengths.max()),
            "mean": round(float(lengths.mean()), 4),
            "fixed": bool(trie.fixed_length),
        },
        "prefix_free": trie.is_prefix_free,
        "collisions": {"policy": tokenizer.collision_policy, "resolved": tokenizer.collisions_resolved_},
        "supports_cold_start": tokenizer.supports_cold_start,
        "trie_nodes": trie.n_nodes,
        "levels": levels,
        "fingerprint": tokenizer.fingerprint,
        "fit_info": tokenizer.info_,
    }
