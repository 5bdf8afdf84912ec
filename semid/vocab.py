"""Token strings for codes: ``(12, 5, 200)`` <-> ``"<a_12><b_5><c_200>"``.

A code is a tuple of per-level indices: level ``l`` holds an integer in
``[0, level_sizes[l])``. Each level renders with a prefix (``a``, ``b``, ...);
levels that share a prefix share one token table (used by schemes whose
positions draw from the same alphabet, such as title words), and then must
have the same size.

Every distinct token also has a dense *token id* in ``[0, n_tokens)``, the
integer that generators embed: ``token_id(level, index)``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

from .errors import CodeFormatError, ParameterError

__all__ = ["CodeVocab", "default_prefixes"]

_TOKEN = re.compile(r"<([A-Za-z]+)_(\d+)>")


def default_prefixes(n_levels: int) -> tuple[str, ...]:
    """``a, b, ..., z, aa, ab, ...`` for ``n_levels`` levels."""
    letters = string.ascii_lowercase
    out = []
    for i in range(n_levels):
        name, j = "", i
        while True:
            name = letters[j % 26] + name
            j = j // 26 - 1
            if j < 0:
                break
        out.append(name)
    return tuple(out)


class CodeVocab:
    """Level sizes and the token strings of one index.

    Args:
        level_sizes: number of distinct values at each level, shape ``(L,)``.
        prefixes: token prefix of each level (default ``a, b, c, ...``).
        labels: optional human-readable label per value per level (e.g. category
            names); informative only, never part of a token string.
    """

    def __init__(
        self,
        level_sizes: Sequence[int],
        prefixes: Sequence[str] | None = None,
        labels: Sequence[Sequence[str] | None] | None = None,
    ):
        sizes = tuple(int(s) for s in level_sizes)
        if not sizes or any(s < 1 for s in sizes):
            raise ParameterError(f"level_sizes must be positive integers, got {list(level_sizes)}")
        prefixes = tuple(prefixes) if prefixes is not None else default_prefixes(len(sizes))
        if len(prefixes) != len(sizes):
            raise ParameterError(f"{len(prefixes)} prefixes for {len(sizes)} levels")
        for prefix in prefixes:
            if not re.fullmatch(r"[A-Za-z]+", prefix):
                raise ParameterError(f"token prefix must be letters only, got {prefix!r}")
        self.level_sizes = sizes
        self.prefixes = prefixes
        self.labels = [list(x) if x is not None else None for x in (labels or [None] * len(sizes))]
        # Token-id offsets: one table per distinct prefix, in order of first use.
        self._offsets: list[int] = []
        self._table_of_prefix: dict[str, tuple[int, int]] = {}  # prefix -> (offset, size)
        total = 0
        for prefix, size in zip(prefixes, sizes):
            if prefix in self._table_of_prefix:
                offset, shared = self._table_of_prefix[prefix]
                if shared != size:
                    raise ParameterError(
                        f"levels sharing prefix {prefix!r} must have equal sizes, got {shared} and {size}"
                    )
            else:
                offset = total
                self._table_of_prefix[prefix] = (offset, size)
                total += size
            self._offsets.append(offset)
        self.n_tokens = total

    # -- basic properties -------------------------------------------------
    @property
    def n_levels(self) -> int:
        return len(self.level_sizes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CodeVocab) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"CodeVocab(level_sizes={list(self.level_sizes)}, prefixes={list(self.prefixes)})"

    # -- token ids ----------------------------------------------------------
    def token_id(self, level: int, index: int) -> int:
        """Dense id of the token for ``index`` at ``level``."""
        self._check(level, index)
        return self._offsets[level] + int(index)

    def token_ids(self, code: Sequence[int]) -> list[int]:
        """Dense token ids of a whole code."""
        return [self.token_id(level, index) for level, index in enumerate(code)]

    def level_offsets(self) -> list[int]:
        """Token id of index 0 at each level (levels sharing a prefix share it)."""
        return list(self._offsets)

    def tokens(self) -> list[str]:
        """Every distinct token string, in token-id order (length ``n_tokens``)."""
        out: list[str] = []
        for prefix, (offset, size) in self._table_of_prefix.items():
            out.extend(f"<{prefix}_{i}>" for i in range(size))
        return out

    # -- rendering ----------------------------------------------------------
    def render(self, code: Sequence[int]) -> str:
        """``(12, 5)`` -> ``"<a_12><b_5>"``. Raises :class:`CodeFormatError` when out of range."""
        if len(code) > self.n_levels:
            raise CodeFormatError(f"code {tuple(code)} has {len(code)} levels; this index has at most {self.n_levels}")
        for level, index in enumerate(code):
            self._check(level, index)
        return "".join(f"<{self.prefixes[level]}_{int(index)}>" for level, index in enumerate(code))

    def render_tokens(self, code: Sequence[int]) -> list[str]:
        """One token string per level of ``code``."""
        self.render(code)  # validates
        return [f"<{self.prefixes[level]}_{int(index)}>" for level, index in enumerate(code)]

    def parse(self, text: str) -> tuple[int, ...]:
        """``"<a_12><b_5>"`` -> ``(12, 5)``; whitespace between tokens is allowed.

        Raises:
            CodeFormatError: text that is not a sequence of tokens, a prefix at the
                wrong level, or an index out of range for its level.
        """
        stripped = "".join(text.split())
        code: list[int] = []
        position = 0
        for match in _TOKEN.finditer(stripped):
            if match.start() != position:
                break
            level = len(code)
            prefix, index = match.group(1), int(match.group(2))
            if level >= self.n_levels:
                raise CodeFormatError(f"{text!r} has more than {self.n_levels} tokens")
            if prefix != self.prefixes[level]:
                raise CodeFormatError(
                    f"{text!r}: token {match.group(0)} at level {level} should have prefix "
                    f"{self.prefixes[level]!r}"
                )
            if index >= self.level_sizes[level]:
                raise CodeFormatError(
                    f"{text!r}: token {match.group(0)} is out of range (level {level} has "
                    f"{self.level_sizes[level]} values)"
                )
            code.append(index)
            position = match.end()
        if position != len(stripped) or not code:
            raise CodeFormatError(
                f"cannot parse {text!r} as a code; expected tokens like "
                f"{self.render([0] * min(2, self.n_levels))!r}"
            )
        return tuple(code)

    def label(self, code: Sequence[int]) -> list[str]:
        """Human-readable labels of a code (falls back to the token string)."""
        out = []
        for level, index in enumerate(code):
            labels = self.labels[level] if level < len(self.labels) else None
            out.append(labels[index] if labels else f"<{self.prefixes[level]}_{index}>")
        return out

    # -- serialisation --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "level_sizes": list(self.level_sizes),
            "prefixes": list(self.prefixes),
            "token_format": "<{prefix}_{index}>",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], labels: Sequence[Sequence[str] | None] | None = None) -> "CodeVocab":
        return cls(data["level_sizes"], data["prefixes"], labels)

    def _check(self, level: int, index: int) -> None:
        if not 0 <= level < self.n_levels:
            raise CodeFormatError(f"level {level} out of range: this index has {self.n_levels} levels")
        if not 0 <= int(index) < self.level_sizes[level]:
            raise CodeFormatError(
                f"index {index} out of range at level {level} (expected 0..{self.level_sizes[level] - 1})"
            )
