"""LLMRank's three prompts (Hou et al., ECIR 2024; RUCAIBox/LLMRank), with the published wording.

The reference builds history and candidates as Python list reprs of ``"{j}. {title}"``
(the model sees ``['0. Toy Story', '1. Heat']``); that quirk is kept. The wording is
the ML-1M one ("movies", "watched"); for product catalogues the reference's Games
prompts say "products" / "purchased", which :data:`DOMAINS` reproduces.

- ``sequential``: history in order, then the candidates and the ranking instruction;
- ``recency``: the same plus "Note that my most recently watched movie is {last}.";
- ``icl``: in-context: the history without its last item, then "if I ask you to
  recommend a new movie ... you should recommend {last}", then the task.
"""

from __future__ import annotations

from collections.abc import Sequence

from semid.errors import ParameterError

__all__ = ["DOMAINS", "PROMPTS", "build_prompt"]

#: Words of a domain: (item, items, past verb, verb, gerund).
DOMAINS = {
    "movie": ("movie", "movies", "watched", "watch", "watching"),
    "product": ("product", "products", "purchased", "purchase", "purchasing"),
}

PROMPTS = ("sequential", "recency", "icl")

_TASK = (
    "Now there are {n} candidate {items} that I can {verb} next:\n{cands}\n"
    "Please rank these {n} {items} by measuring the possibilities that I would like to {verb} next most, "
    "according to my {gerund} history. Please think step by step.\n{note}"
    "Please show me your ranking results with order numbers. Split your output with line break. "
    "You MUST rank the given candidate {items}. You can not generate {items} that are not in the given candidate list."
)


def _numbered(titles: Sequence[str]) -> str:
    return str([f"{j}. {title}" for j, title in enumerate(titles)])


def build_prompt(kind: str, history: Sequence[str], candidates: Sequence[str], *, domain: str = "product") -> str:
    """The prompt of strategy ``kind`` for rendered ``history`` (oldest first) and ``candidates``.

    Raises:
        ParameterError: an unknown strategy or domain, or an empty history.
    """
    if kind not in PROMPTS:
        raise ParameterError(f"LLMRank prompt must be one of {', '.join(PROMPTS)}, got {kind!r}")
    if domain not in DOMAINS:
        raise ParameterError(f"LLMRank domain must be one of {', '.join(DOMAINS)}, got {domain!r}")
    if not history:
        raise ParameterError("LLMRank needs a non-empty history")
    item, items, past, verb, gerund = DOMAINS[domain]
    words = {"n": len(candidates), "items": items, "verb": verb, "gerund": gerund, "cands": _numbered(candidates)}
    if kind == "icl":
        last = history[-1]
        head = (f"I've {past} the following {items} in the past in order:\n{_numbered(history[:-1])}\n\n"
                f"Then if I ask you to recommend a new {item} to me according to my {gerund} history, you should "
                f"recommend {last} and now that I've just {past} {last}, ")
        task = _TASK.format(note="", **words)
        return head + "there are" + task[len("Now there are"):]
    note = f"Note that my most recently {past} {item} is {history[-1]}.\n" if kind == "recency" else ""
    return (f"I've {past} the following {items} in the past in order:\n{_numbered(history)}\n\n"
            + _TASK.format(note=note, **words))
