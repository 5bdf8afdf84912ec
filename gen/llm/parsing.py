"""Turning an LLM's text into ranked items: the parsers of the published methods, by name.

Every parser returns a :class:`ParseResult`: the valid items in the order the
text gives them, the pieces of text that matched nothing, and its own name, so a
result always records which rule produced it.

- ``lcs`` (LLMRank): the answer is split into lines, a leading ``"N. "`` is
  stripped, and a line matches the first candidate whose title it contains, that
  contains it, or whose longest common subsequence with it exceeds
  ``threshold`` (0.9) x the title's length; a candidate matched twice counts once.
- ``substring`` (LLaRA, S-DPO): the candidates whose title occurs in the answer;
  the answer is valid only when exactly one does.
- ``nearest_title`` (zero-shot conversational recommendation): each line is
  mapped to the catalogue title at the smallest normalised edit distance, kept
  when that distance is at most ``threshold``.
- ``sid``: semantic-ID token strings of a semid index found in the text (a trie
  match: only complete codes of real items count).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from semid.errors import ParameterError

__all__ = ["PARSERS", "ParseResult", "lcs_length", "parse", "parse_lcs", "parse_nearest_title", "parse_sid",
           "parse_substring"]

_NUMBERED = re.compile(r"^\s*(?:\d+\s*[.):-]|[-*•])\s*")


@dataclass
class ParseResult:
    """Items recovered from one answer.

    Attributes:
        ranked: valid item ids, best first, without repeats.
        invalid: pieces of the answer (lines) that matched no allowed item.
        parser: the parser's name.
        valid: whether the answer counts as a valid output under the parser's rule.
    """

    ranked: list[str]
    invalid: list[str] = field(default_factory=list)
    parser: str = ""
    valid: bool = True


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of two strings (as ``pylcs.lcs``)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for ch in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if ch == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def _lines(text: str) -> list[str]:
    return [_NUMBERED.sub("", html.unescape(line)).strip() for line in text.splitlines() if line.strip()]


def parse_lcs(text: str, candidates: Sequence[str], titles: Mapping[str, str], *, threshold: float = 0.9
              ) -> ParseResult:
    """LLMRank's rule (see the module docstring)."""
    ranked: list[str] = []
    invalid: list[str] = []
    shown = [(item, html.unescape(titles[item])) for item in candidates]
    for line in _lines(text):
        match = next((item for item, title in shown
                      if title in line or (line and line in title)
                      or lcs_length(line, title) > threshold * len(title)), None)
        if match is None:
            invalid.append(line)
        elif match not in ranked:
            ranked.append(match)
    return ParseResult(ranked, invalid, "lcs", valid=bool(ranked))


def parse_substring(text: str, candidates: Sequence[str], titles: Mapping[str, str]) -> ParseResult:
    """LLaRA / S-DPO: valid when exactly one candidate title occurs in the answer."""
    found = [item for item in candidates if titles[item] and titles[item] in text]
    return ParseResult(found if len(found) == 1 else [], [] if found else [text.strip()], "substring",
                       valid=len(found) == 1)


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ch in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ch != other)))
        previous = current
    return previous[-1]


def parse_nearest_title(text: str, titles: Mapping[str, str], *, threshold: float = 0.3) -> ParseResult:
    """Each answer line to the catalogue item with the nearest title (normalised edit distance <= ``threshold``)."""
    norm = {item: title.lower().strip() for item, title in titles.items() if title}
    ranked: list[str] = []
    invalid: list[str] = []
    for line in _lines(text):
        probe = line.lower()
        best, distance = None, float("inf")
        for item, title in norm.items():
            if abs(len(title) - len(probe)) > threshold * max(len(title), len(probe), 1):
                continue  # cannot be within the threshold; skip the quadratic distance
            d = _edit_distance(probe, title) / max(len(title), len(probe), 1)
            if d < distance:
                best, distance = item, d
        if best is not None and distance <= threshold:
            if best not in ranked:
                ranked.append(best)
        else:
            invalid.append(line)
    return ParseResult(ranked, invalid, "nearest_title", valid=bool(ranked))


def parse_sid(text: str, index, candidates: Sequence[str] | None = None) -> ParseResult:
    """Complete semantic IDs of ``index`` in the text, in order (optionally only ``candidates``)."""
    allowed = set(candidates) if candidates is not None else None
    tokens = re.findall(r"<[A-Za-z]+_\d+>", text)
    ranked: list[str] = []
    invalid: list[str] = []
    start = 0  # the shortest run of tokens from here that decodes to an item is one code
    while start < len(tokens):
        matched = None
        for end in range(start + 1, len(tokens) + 1):
            piece = "".join(tokens[start:end])
            try:
                item = index.decode(piece)
            except (KeyError, ValueError):
                continue
            matched = (item, end)
            break
        if matched is None:
            invalid.append(tokens[start])
            start += 1
            continue
        item, start = matched
        if (allowed is None or item in allowed) and item not in ranked:
            ranked.append(item)
        elif allowed is not None and item not in allowed:
            invalid.append(index.render(item))
    return ParseResult(ranked, invalid, "sid", valid=bool(ranked))


#: Parser name -> function; all take ``(text, **context)`` through :func:`parse`.
PARSERS: dict[str, Callable[..., ParseResult]] = {
    "lcs": parse_lcs,
    "nearest_title": parse_nearest_title,
    "sid": parse_sid,
    "substring": parse_substring,
}


def parse(name: str, text: str, **context) -> ParseResult:
    """Run parser ``name`` (see :data:`PARSERS`) on ``text``."""
    try:
        function = PARSERS[name]
    except KeyError:
        raise ParameterError(f"unknown parser {name!r}; parsers: {', '.join(sorted(PARSERS))}") from None
    return function(text, **context)
