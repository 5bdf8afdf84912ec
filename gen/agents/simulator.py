"""InteRecAgent's user simulators: a hidden target item, Hit@T and average turns (template or LLM shopper)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["SIMULATOR_PROMPT", "simulate"]


SIMULATOR_PROMPT = (
    "You are a shopper talking to a shopping assistant. You want this product: {facts}. Never say its exact "
    "name. Reveal one more detail than before each time you speak, in one short sentence.\n{dialogue}"
    "Shopper:"
)


def _clues(record) -> list[str]:
    """The template simulator's clues about a target item, coarse to fine."""
    cats = record.get("categories") or []
    clues = []
    if cats:
        clues.append(f"I am looking for some {str(cats[-1] if isinstance(cats, list) else cats).lower()}.")
    if record.get("brand"):
        clues.append(f"Preferably from brand {record['brand']}.")
    try:
        if record.get("price") not in (None, ""):
            clues.append(f"Something under {math.ceil(float(record['price']) + 1)} dollars.")
    except (TypeError, ValueError):
        pass
    words = [w for w in re.findall(r"[A-Za-z]{4,}", str(record.get("title") or ""))][:3]
    if words:
        clues.append("It should be a " + " ".join(words).lower() + " product.")
    return clues or ["Recommend me something."]


def simulate(agent_factory, dataset, cases: Sequence, *, turns: int = 5, simulator=None,
             max_new_tokens: int = 40, share_history: bool = False) -> dict[str, Any]:
    """Hit@T and average turns with a simulated user who wants a hidden target item.

    ``simulator=None``: the template simulator; turn 1 names the target's category, then its
    brand, then a price bound, then title words (cumulative messages). With an LLM backend as
    ``simulator`` (the paper's LLM simulator): the model plays the shopper from the target's
    facts and the dialogue so far; a message that names the target's full title is replaced by
    the template clue of that turn and counted in ``title_leaks``. A hit is the target among the
    agent's recommended items; misses count ``T + 1`` turns, as the paper. ``hit@1`` is the share
    found at the first turn. ``share_history``: the agent starts knowing the shopper's past
    items (``case.history``) as likes, so a ``preference`` ranking can use them, as InteRecAgent
    ranks with a sequential recommender over the user's history.
    """
    records = {r["item_id"]: r for r in dataset.items.records}
    hits, used, rows, leaks = 0, [], [], 0
    for case in cases:
        agent = agent_factory()
        if share_history:
            agent.profile.like.extend(i for i in case.history if i not in agent.profile.like)
        record = records[case.target]
        clues = _clues(record)
        title = str(record.get("title") or "").strip().lower()
        found_at, dialogue = None, ""
        for t in range(1, (turns if simulator is not None else min(turns, len(clues))) + 1):
            template = " ".join(clues[: min(t, len(clues))])
            if simulator is None:
                message = template
            else:
                facts = "; ".join(clues)
                message = simulator.generate([SIMULATOR_PROMPT.format(facts=facts, dialogue=dialogue)],
                                             max_new_tokens=max_new_tokens)[0].strip().split("\n")[0].strip()
                if not message or (title and title in message.lower()):
                    leaks += bool(message)
                    message = template
            result = agent.turn(message)
            dialogue += f"Shopper: {message}\nAssistant: {result['answer'][:300]}\n"
            if case.target in result["items"]:
                found_at = t
                break
        hits += found_at is not None
        used.append(found_at if found_at is not None else turns + 1)
        rows.append({"user_id": case.user_id, "target": case.target, "found_at": found_at})
    n = max(len(cases), 1)
    out = {f"hit@{turns}": hits / n, "hit@1": sum(r["found_at"] == 1 for r in rows) / n, "average_turns": float(np.mean(used)) if used else float("nan"),
           "users": len(cases), "simulator": "template" if simulator is None else "llm", "records": rows}
    if simulator is not None:
        out["title_leaks"] = leaks
    return out
