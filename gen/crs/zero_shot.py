"""Zero-shot conversational recommendation by an LLM, as in He et al. (CIKM 2023).

The model gets the published prompt with the dialogue and writes 20
recommendations; the answer is parsed as the reference's ``extract.py`` does
(text before ``1.`` is the model's preference talk and is dropped; the rest split
on lines, or on commas when it is one line; parentheses, numbering and repeated
spaces removed) and each name is mapped to the catalogue title at the smallest
Levenshtein distance (titles and names compared lower-cased and without
parentheses; among equally near titles a film wins over a franchise or series). Every gold item is one evaluation row. Four settings: the
*filtered* mapping keeps only matches at distance <= 2, and *exclude_seen* drops
movies already mentioned in the dialogue. Rows are split into "recommendation"
(the gold movie was not mentioned before) and "discussion" (it was: the
repeated-item shortcut the paper found), with Recall / NDCG / MRR @{1,5,10,20}
as mean, standard error and 95% interval.

``decoding="constrained"`` is a labelled variant, not the paper's protocol: the
same prompt, decoded by beam search that can only write a catalogue title (a
token trie over every title, summed log-probabilities, 20 beams), so all 20
recommendations are catalogue items by construction (distance 0) and no parsing
or mapping is involved. It needs a local model.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from semid.errors import ParameterError

from .redial import ReDIAL, Turn

__all__ = ["PROMPT", "crs_evaluate", "extract_names", "map_to_catalogue", "score_rows"]

PROMPT = ("Pretend you are a movie recommender system. \n I will give you a conversation between a user and you "
          "(a recommender system). Based on the conversation, you reply me with 20 recommendations without extra "
          "sentences.\n Here is the conversation: {}")

KS = (1, 5, 10, 20)
_NUMBER = re.compile(r"^\s*\d+\s*[.)]\s*")


def extract_names(answer: str) -> list[str]:
    """Movie names in an answer (see the module docstring)."""
    text = answer
    start = text.find("1.")
    if start >= 0:
        text = text[start:]
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) <= 1:
        lines = text.split(",")
    names = []
    for line in lines:
        name = re.sub(r"\([^)]*\)", "", line)
        name = _NUMBER.sub("", name)
        name = re.sub(r"\s+", " ", name).strip(" \"'-*")
        if name:
            names.append(name)
    return names


def _normal(title: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\([^)]*\)", "", title)).strip().lower()


def map_to_catalogue(names: Sequence[str], titles: dict[int, str]) -> list[tuple[int, int]]:
    """``(item id, edit distance)`` of the nearest catalogue title for each name (in order, repeats kept)."""
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    ids = list(titles)
    choices = [_normal(titles[i]) for i in ids]
    # Without parentheses "Police Academy" (the film) and "Police Academy (franchise)" are one
    # string; among equally near titles a film wins (dated, then unqualified), then catalogue order.
    kind = [0 if re.search(r"\(\d{4}\)", titles[i]) else 1 if "(" not in titles[i] else 2 for i in ids]
    out = []
    for name in names:
        matches = process.extract(name.lower(), choices, scorer=Levenshtein.distance, limit=8)
        if matches:
            best = min(d for _, d, _ in matches)
            position = min((p for _, d, p in matches if d == best), key=lambda p: (kind[p], p))
            out.append((ids[position], int(best)))
    return out


def _ranked(matches: list[tuple[int, int]], *, filtered: bool, seen: set[int]) -> list[int]:
    out: list[int] = []
    for item, distance in matches:
        if filtered and distance > 2:
            continue
        if item in seen or item in out:
            continue
        out.append(item)
    return out


def score_rows(ranked: list[int], gold: int) -> dict[str, float]:
    """Recall / NDCG / MRR @{1,5,10,20} of one gold item in one ranked list."""
    rank = ranked.index(gold) + 1 if gold in ranked else 0
    out = {}
    for k in KS:
        hit = 0 < rank <= k
        out[f"recall@{k}"] = float(hit)
        out[f"ndcg@{k}"] = 1.0 / math.log2(rank + 1) if hit else 0.0
        out[f"mrr@{k}"] = 1.0 / rank if hit else 0.0
    return out


def _summary(rows: list[dict[str, float]]) -> dict[str, Any]:
    if not rows:
        return {"rows": 0}
    out: dict[str, Any] = {"rows": len(rows)}
    for key in rows[0]:
        values = np.array([r[key] for r in rows])
        se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
        out[key] = {"mean": float(values.mean()), "se": se,
                    "ci95": [float(values.mean() - 1.96 * se), float(values.mean() + 1.96 * se)]}
    return out


def crs_evaluate(backend, redial: ReDIAL, *, turns: int = 300, seed: int = 0, max_new_tokens: int = 256,
                 decoding: str = "generate", progress: bool = True) -> dict[str, Any]:
    """The zero-shot protocol on a seeded sample of ``turns`` turns (0 = all); results of the four settings.

    ``decoding``: ``"generate"`` (the paper: free text, parsed and mapped to the catalogue) or
    ``"constrained"`` (the labelled variant: beams over catalogue titles, see the module docstring).
    """
    if turns < 0:
        raise ParameterError(f"turns must be >= 0, got {turns}")
    if decoding not in ("generate", "constrained"):
        raise ParameterError(f"decoding must be 'generate' or 'constrained', got {decoding!r}")
    if decoding == "constrained" and not hasattr(backend, "rank_options"):
        raise ParameterError("crs: decoding 'constrained' needs a local model (--llm); a server cannot "
                             "constrain its decoding")
    chosen: list[Turn] = list(redial.turns)
    if turns and turns < len(chosen):
        picks = np.sort(np.random.default_rng(seed).choice(len(chosen), size=turns, replace=False))
        chosen = [chosen[i] for i in picks]
    started = time.perf_counter()
    answers: list[str] = []
    if decoding == "constrained":
        ids = list(redial.titles)
        options = [redial.titles[i] for i in ids]
        matches = []
        for turn in tqdm(chosen, desc="crs (constrained)", unit="turn", disable=not progress):
            beams = backend.rank_options(PROMPT.format(turn.dialogue), options, num_beams=max(KS))
            matches.append([(ids[j], 0) for j, _ in beams])
            answers.append("\n".join(f"{r + 1}. {options[j]}" for r, (j, _) in enumerate(beams)))
        seconds = time.perf_counter() - started
    else:
        for start in tqdm(range(0, len(chosen), 8), desc="crs", unit="batch", disable=not progress):
            batch = chosen[start : start + 8]
            answers.extend(backend.generate([PROMPT.format(t.dialogue) for t in batch],
                                            max_new_tokens=max_new_tokens))
        seconds = time.perf_counter() - started
        matches = [map_to_catalogue(extract_names(a), redial.titles) for a in answers]
    settings = {}
    for filtered in (False, True):
        for exclude_seen in (False, True):
            groups: dict[str, list] = {"all": [], "recommendation": [], "discussion": []}
            for turn, found in zip(chosen, matches):
                ranked = _ranked(found, filtered=filtered, seen=set(turn.mentioned) if exclude_seen else set())
                for gold in turn.rec:
                    row = score_rows(ranked, gold)
                    groups["all"].append(row)
                    groups["discussion" if gold in turn.mentioned else "recommendation"].append(row)
            name = f"{'filtered' if filtered else 'unfiltered'}, {'exclude' if exclude_seen else 'include'} seen"
            settings[name] = {group: _summary(rows) for group, rows in groups.items()}
    parsed = sum(1 for m in matches if m)
    return {
        "method": "zero-shot CRS (He et al., CIKM 2023)" + (" (catalogue-constrained variant)"
                                                              if decoding == "constrained" else ""),
        "decoding": decoding,
        "backend": getattr(backend, "name", type(backend).__name__),
        "turns": len(chosen), "seed": seed, "max_new_tokens": max_new_tokens,
        "parse_rate": parsed / max(len(chosen), 1),
        "mean_names_per_answer": float(np.mean([len(m) for m in matches])) if matches else 0.0,
        "seconds_per_turn": seconds / max(len(chosen), 1),
        "settings": settings,
        "records": [{"dialog_id": t.dialog_id, "turn_id": t.turn_id, "answer": a, "matched": m}
                    for t, a, m in zip(chosen, answers, matches)],
    }
