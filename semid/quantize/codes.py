"""From semantic codes to unique item codes, and back for cold-start items.

Learned quantizers produce ``L`` semantic levels that may collide; the TIGER
policy (:func:`semid.collisions.append_disambiguation`) appends a level
numbering the items that share a code. :func:`complete_cold_code` turns the
semantic code of an unseen item into a code of the index's shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..collisions import append_disambiguation, count_collisions
from ..errors import DataError
from ..trie import CodeTrie
from ..vocab import CodeVocab

__all__ = ["DISAMBIGUATION_CHOICES", "complete_cold_code", "disambiguate", "embedding_rows"]

#: ``always``: every item gets the extra level (TIGER, fixed length);
#: ``colliding_only``: only items whose semantic code collides do.
DISAMBIGUATION_CHOICES = ("always", "colliding_only")


def disambiguate(semantic: np.ndarray, level_sizes: Sequence[int], policy: str) -> tuple[np.ndarray, CodeVocab, int]:
    """Apply the extra-level policy to ``int (n, L)`` semantic codes.

    Returns ``(codes int32 (n, L + 1) -1 padded, vocab, collisions_resolved)``.
    With ``colliding_only`` and no collision at all, no level is added.
    """
    if policy == "colliding_only" and count_collisions(semantic) == 0:
        return semantic.astype(np.int32), CodeVocab(list(level_sizes)), 0
    codes, resolved, extra = append_disambiguation(semantic, always=policy == "always")
    return codes, CodeVocab([*level_sizes, extra]), resolved


def complete_cold_code(trie: CodeTrie, semantic: Sequence[int], n_levels_total: int) -> tuple[int, ...]:
    """Code of the index's shape for an unseen item with ``semantic`` levels.

    If the semantic code is a known item's whole code, that code; if items
    share it as a prefix, the code of the first of them (the nearest known
    item); otherwise the semantic code padded with extra-level 0 when the
    index has an extra level.
    """
    prefix = tuple(int(c) for c in semantic)
    node = trie.node(prefix)
    if node >= 0:
        code = list(prefix)
        while trie.terminal_item[node] < 0:
            indices, nodes = trie.children(node)
            code.append(int(indices[0]))
            node = int(nodes[0])
        return tuple(code)
    if n_levels_total > len(prefix):
        return (*prefix, 0)
    return prefix


def embedding_rows(scheme: str, embedding, dim: int) -> np.ndarray:
    """One embedding ``(dim,)`` or many ``(n, dim)`` as a ``float32 (n, dim)`` matrix.

    Raises:
        DataError: wrong shape or width, or NaN / infinite values.
    """
    matrix = np.asarray(embedding, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise DataError(f"{scheme}: embedding must have {dim} values, got shape {np.shape(embedding)}")
    if not np.isfinite(matrix).all():
        raise DataError(f"{scheme}: embedding holds NaN or infinite values")
    return matrix
