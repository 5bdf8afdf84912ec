"""TID: the item title as tokens ("How to Index Item IDs", title indexing).

Titles are lower-cased and split into words (unicode word characters); the
first ``max_words`` words form the code. Every position draws from one shared
word table (token prefix ``t``), so ``<t_17>`` means the same word anywhere.
Codes have variable length; a title that is a prefix of another is fine
because the trie allows an end token exactly at complete codes.

Collision policy: items whose (truncated) titles are identical get one extra
token ``#k`` (k = 0, 1, ... in item order) from a reserved range at the end of
the word table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import DataError
from ..params import Param, at_least
from ..registry import register
from ..tokenizer import Code, FitInputs, FitResult, ItemTokenizer
from ..trie import pad_codes
from ..vocab import CodeVocab

__all__ = ["TitleTokenizer", "title_words"]

_WORD = re.compile(r"\w+", re.UNICODE)


def title_words(title: str, max_words: int) -> list[str]:
    """Lower-cased words of ``title``, at most ``max_words``."""
    return _WORD.findall(title.lower())[:max_words]


@register
class TitleTokenizer(ItemTokenizer):
    """Title indexing over a word table learned from the fitted titles."""

    scheme = "title"
    requires = frozenset({"title"})
    supports_cold_start = True
    collision_policy = "identical titles get an extra '#k' token numbering them"
    description = "TID: item title words as tokens"
    params = {
        "seed": Param("seed", 0, "unused (title indexing is deterministic)"),
        "max_words": Param("max_words", 16, "words of the title kept", check=at_least(1)),
        # Real catalogues have a few untitled items (7 of 12,101 on Beauty): by default
        # they are titled by their id instead of failing the whole index.
        "on_missing": Param(
            "on_missing", "item_id", "item without title: use its 'item_id' as the title, or 'error'",
            choices=("error", "item_id"),
        ),
    }

    def _required_fields(self) -> list[str]:
        return ["title"] if self._params["on_missing"] == "error" else []

    def _fit(self, inputs: FitInputs) -> FitResult:
        max_words = self._params["max_words"]
        titles = inputs.items.field("title")
        words_per_item = []
        for item_id, title in zip(inputs.items.item_ids, titles):
            words = title_words(str(title or ""), max_words)
            if not words and self._params["on_missing"] == "item_id":
                words = title_words(item_id, max_words)
            if not words:
                hint = ("; set on_missing=item_id to title it by its id" if self._params["on_missing"] == "error"
                        else " and none in its id")
                raise DataError(f"scheme 'title': item {item_id!r} has no word in its title {title!r}{hint}")
            words_per_item.append(tuple(words))
        table = sorted({w for words in words_per_item for w in words})
        word_id = {w: i for i, w in enumerate(table)}
        groups: dict[tuple[str, ...], list[int]] = {}
        for row, words in enumerate(words_per_item):
            groups.setdefault(words, []).append(row)
        largest = max(len(g) for g in groups.values())
        n_dup_tokens = largest if largest > 1 else 0
        codes: list[list[int]] = []
        collided = 0
        rank = {}
        for rows in groups.values():
            if len(rows) > 1:
                collided += len(rows) - 1
                for k, row in enumerate(rows):
                    rank[row] = k
        for row, words in enumerate(words_per_item):
            code = [word_id[w] for w in words]
            if row in rank:
                code.append(len(table) + rank[row])
            codes.append(code)
        padded = pad_codes(codes)
        size = len(table) + n_dup_tokens
        labels = table + [f"#{k}" for k in range(n_dup_tokens)]
        n_levels = padded.shape[1]
        return FitResult(
            codes=padded,
            vocab=CodeVocab([size] * n_levels, ["t"] * n_levels),
            collisions_resolved=collided,
            info={"n_words": len(table), "duplicate_titles": sum(len(g) > 1 for g in groups.values())},
            labels=[labels] * n_levels,
        )

    def encode_new(self, item: Mapping[str, Any] | None = None, *, embedding: np.ndarray | None = None) -> Code:
        """Code of an unseen item from its ``title`` (every word must be in the table)."""
        self._require_fitted()
        if not item or not item.get("title"):
            raise DataError("scheme 'title': encode_new needs an item with a 'title'")
        words = title_words(str(item["title"]), self._params["max_words"])
        table = self.vocab.labels[0] or []
        word_id = {w: i for i, w in enumerate(table) if not w.startswith("#")}
        unknown = [w for w in words if w not in word_id]
        if unknown or not words:
            raise DataError(
                f"scheme 'title': words {unknown[:5]} of {item['title']!r} are not in the word table "
                "learned at fit time; title codes can only use known words"
            )
        return tuple(word_id[w] for w in words)
