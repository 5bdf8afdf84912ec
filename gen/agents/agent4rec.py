"""Agent4Rec (Zhang et al., SIGIR 2024): simulated users page through a recommender's lists.

Profiles come from the data as in the reference (``datasets/ml-1m/2_get_user_statistic.py``):

- *activity*: number of ratings, cut at the 60th and 90th percentiles;
- *conformity*: mean squared deviation of the user's ratings from each item's average, cut at
  the 25th and 80th percentiles;
- *diversity*: number of categories covering 80% of the user's items, cut at the 33rd and 66th;

each level mapped to a fixed sentence; the *taste* is templated from the user's most frequent
categories and best-rated titles (the reference asks gpt-3.5; a 135M model writes poor tastes).

The simulation shows ``items_per_page`` items per page from any semid recommender. Decisions
are **constrained choices scored by the LLM** (the research notes' CPU recipe; the reference
parses free text): for each item, the log-likelihood of "yes" vs "no" for "would you watch it",
of "1".."5" for the rating of a watched item, and of "[NEXT]" vs "[EXIT]" after each page
(exit forced at ``max_pages``); after exiting, a 1-10 satisfaction answer (the interview).
Memory: the reference's factual sentence per page, an emotional entry and a reflection (see
:func:`simulate_agents`), all in the prompt or retrieved by MiniLM similarity. Outputs per
recommender: view rate (watched / shown), mean rating, average likes per page (rating 5),
mean exit page, mean satisfaction; the same seed and response cache give the same run.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from semid.errors import DataError, ParameterError

__all__ = ["ACTIVITY", "CONFORMITY", "DIVERSITY", "EMOTIONS", "AgentProfile", "MemoryRetriever", "build_profiles",
           "simulate_agents"]

ACTIVITY = (
    "An Incredibly Elusive Occasional Viewer, so seldom attracted by recommendations that it is almost impossible to "
    "evoke your interest.",
    "An Occasional Viewer, seldom attracted by recommendations; only something that really catches your eye makes "
    "you look.",
    "A Movie Buff: you watch a lot and happily explore what is recommended.",
)
CONFORMITY = (
    "Your ratings follow your own taste, often far from what others think.",
    "Your ratings sometimes agree with what others think.",
    "Your ratings mostly agree with what others think of an item.",
)
DIVERSITY = (
    "You stick to a few kinds of items you know you like.",
    "You like a moderate variety of kinds of items.",
    "You enjoy a wide variety of kinds of items.",
)


@dataclass
class AgentProfile:
    user_id: str
    activity: int
    conformity: int
    diversity: int
    taste: str
    history: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return " ".join([ACTIVITY[self.activity], CONFORMITY[self.conformity], DIVERSITY[self.diversity],
                         self.taste])


def _bucket(values: np.ndarray, cuts: Sequence[float]) -> np.ndarray:
    edges = np.percentile(values, cuts)
    return np.searchsorted(edges, values, side="right")


def _categories(record) -> list[str]:
    value = record.get("categories") or []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def build_profiles(dataset) -> list[AgentProfile]:
    """One profile per user with ratings, from the *training* part of the split (see the module docstring).

    Raises:
        DataError: the dataset has no ratings.
    """
    from semid.evaluation.split import leave_one_out

    seqs = dataset.sequences
    if not seqs.ratings or all(r is None for r in seqs.ratings):
        raise DataError(f"dataset {dataset.name!r} has no ratings; Agent4Rec's traits need them (MovieLens, Amazon)")
    split = leave_one_out(dataset)
    records = {r["item_id"]: r for r in dataset.items.records}
    train = {u: s for u, s in zip(split.train_users, split.train_sequences)}
    rated = []
    for u, (user, items) in enumerate(zip(seqs.user_ids, seqs.items)):
        ratings = seqs.ratings[u]
        if ratings is None or len(train[user]) == 0:
            continue
        n = len(train[user])
        rated.append((user, list(items[:n]), [float(r) for r in ratings[:n]]))
    if not rated:
        raise DataError(f"dataset {dataset.name!r}: no user has rated training items")
    item_ratings: dict[str, list[float]] = {}
    for _, items, ratings in rated:
        for i, r in zip(items, ratings):
            item_ratings.setdefault(i, []).append(r)
    item_mean = {i: float(np.mean(v)) for i, v in item_ratings.items()}
    activity = np.array([len(items) for _, items, _ in rated], dtype=float)
    conformity = np.array([np.mean([(r - item_mean[i]) ** 2 for i, r in zip(items, ratings)])
                           for _, items, ratings in rated])
    diversity = []
    for _, items, _ in rated:
        counts = Counter(c for i in items for c in _categories(records[i])[:1] or ["?"])
        covered, k = 0, 0
        for _, count in counts.most_common():
            covered += count
            k += 1
            if covered >= 0.8 * sum(counts.values()):
                break
        diversity.append(k)
    a = _bucket(activity, (60, 90))
    # More deviation from the crowd is *less* conformity: invert the bucket.
    c = 2 - _bucket(conformity, (25, 80))
    d = _bucket(np.array(diversity, dtype=float), (33, 66))
    profiles = []
    for (user, items, ratings), ai, ci, di in zip(rated, a, c, d):
        cats = [k for k, _ in Counter(c for i in items for c in _categories(records[i])[:1]).most_common(3) if k]
        best = [str(records[i].get("title") or i) for i, r in sorted(zip(items, ratings), key=lambda x: -x[1])[:3]]
        taste = (f"You like {', '.join(cats)}." if cats else "") + (f" You loved {'; '.join(best)}." if best else "")
        profiles.append(AgentProfile(user, int(ai), int(ci), int(di), taste.strip(), items))
    return profiles


class MemoryRetriever:
    """The agent's memory recall: the ``k`` entries most similar to a query, in the order they were written.

    Similarity is the cosine of sentence embeddings (``embed``: ``list[str] -> float (n, d)``; the
    default is semid's text encoder, all-MiniLM-L6-v2, loaded once); each entry is embedded once.
    """

    def __init__(self, k: int = 3, embed=None):
        if k < 1:
            raise ParameterError(f"memory_k must be >= 1, got {k}")
        self.k, self._embed, self._vectors = k, embed, {}

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._embed is None:
            from semid.embed import _load_model, resolve_model

            model = _load_model(resolve_model(None))
            self._embed = lambda batch: model.encode(batch, normalize_embeddings=True, convert_to_numpy=True,
                                                     show_progress_bar=False)
        return np.asarray(self._embed(texts), dtype=np.float32)

    def recall(self, memory: Sequence[str], query: str) -> list[str]:
        if len(memory) <= self.k:
            return list(memory)
        todo = [m for m in dict.fromkeys([*memory, query]) if m not in self._vectors]
        if todo:
            for text, vector in zip(todo, self._encode(todo)):
                self._vectors[text] = vector / max(float(np.linalg.norm(vector)), 1e-12)
        q = self._vectors[query]
        scores = np.array([float(self._vectors[m] @ q) for m in memory])
        keep = sorted(np.argsort(-scores, kind="stable")[: self.k])
        return [memory[i] for i in keep]


EMOTIONS = ("satisfied", "neutral", "disappointed")


CONTENT_FREE = "N/A"
CALIBRATION = ("none", "items", "all")


def _option_logprobs(backend, prompt: str, options: Sequence[str]) -> np.ndarray:
    """``float64 (len(options),)``: log-probabilities of the options after ``prompt``, renormalised over them."""
    scores = np.asarray(backend.score([prompt] * len(options), [f" {o}" for o in options]), dtype=np.float64)
    return scores - np.logaddexp.reduce(scores)


class Chooser:
    """Constrained choices: the option the model finds most likely after a prompt.

    ``calibrate=True`` applies contextual calibration (Zhao et al., 2021, "Calibrate Before Use"):
    each option's probability is divided by its probability after the same prompt with its
    content (the item title, or the session's memories) replaced by ``"N/A"``. A small model's
    fixed preference for one answer ("no" for SmolLM2, whatever the item) then cancels, and what
    remains is how the content moves the answer. The content-free prior of a prompt is computed
    once and reused (with ``memory="all"`` every item of a page shares it).
    """

    def __init__(self, backend, calibrate: bool = False):
        self.backend = backend
        self.calibrate = calibrate
        self._priors: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}

    def __call__(self, prompt: str, options: Sequence[str], content_free: str | None = None) -> int:
        """Index into ``options``; ``content_free`` is ``prompt`` with its content replaced (used if calibrating)."""
        logp = _option_logprobs(self.backend, prompt, options)
        if self.calibrate and content_free is not None:
            key = (content_free, tuple(options))
            if key not in self._priors:
                self._priors[key] = _option_logprobs(self.backend, content_free, options)
            logp = logp - self._priors[key]
        return int(np.argmax(logp))


# The prompts of Agent4Rec's choices; ``content`` is what calibration replaces by CONTENT_FREE.
def _watch_prompt(agent: str, recalled: str, title: str) -> str:
    return f"{agent}\n{recalled}\nThe recommender shows you \"{title}\". Would you watch it? Answer yes or no. Answer:"


def _feel_prompt(agent: str, content: str) -> str:
    return (f"{agent}\n{content}\nHow do you feel about this page of recommendations? Answer satisfied, neutral or "
            "disappointed. Answer:")


def _reflect_prompt(agent: str, content: str) -> str:
    return f"{agent}\n{content}\nReflect: does this recommender suit your taste? Answer yes or no. Answer:"


def _next_prompt(agent: str, content: str, fatigue: str) -> str:
    return f"{agent}\n{content}{fatigue} Do you go on to the next page or leave? Answer [NEXT] or [EXIT]. Answer:"


def _final_prompt(agent: str, content: str) -> str:
    return f"{agent}\n{content} You left. Rate this recommender system from 1 to 10. Rating:"


def _save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the simulation state atomically (a temporary file renamed over ``path``)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, path)


def _load_state(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The saved state of a run with these ``settings``, or a fresh one; another run's state is refused."""
    if not path.exists():
        return {"settings": settings, "records": [], "current": None}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable Agent4Rec state file ({exc}); delete it to start over") from None
    if state.get("settings") != settings:
        raise ParameterError(f"{path} holds a simulation with other settings ({state.get('settings')}); "
                             f"this one is {settings}: use another state file or delete it")
    return state


def simulate_agents(backend, dataset, recommender, *, agents: int = 20, pages: int = 3, items_per_page: int = 4,
                    seed: int = 0, memory: str = "all", memory_k: int = 3, embed=None, calibrate: str = "none",
                    progress: bool = True, state: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Run ``agents`` seeded simulated users through ``recommender``'s pages; metrics and per-agent records.

    Memory, as in Agent4Rec: after each page a *factual* entry (what was shown, watched, rated), an
    *emotional* entry (the agent's feeling, a constrained choice among :data:`EMOTIONS`) and, from
    the second page on, a *reflection* (does this recommender suit the agent's taste, yes / no).
    ``memory="all"`` puts every entry in each prompt; ``memory="retrieval"`` only the ``memory_k``
    entries most similar to the item being judged (:class:`MemoryRetriever`, MiniLM by default or
    ``embed``), as the reference retrieves its memories.

    ``calibrate``: contextual calibration (:class:`Chooser`) of ``"none"`` of the choices (the
    default, as published), of the ``"items"`` decisions only (watch, rating: calibrated against the
    item title replaced by ``"N/A"``), or of ``"all"`` (also feeling, reflection, next / exit and the
    final rating, calibrated against the memories replaced by it).

    ``state``: a JSON file rewritten atomically after every page; a run killed and started again
    with the same arguments continues from it, losing at most the page in progress (the decisions
    are deterministic, so the result equals an uninterrupted run's).
    """
    if memory not in ("all", "retrieval"):
        raise ParameterError(f"memory must be 'all' or 'retrieval', got {memory!r}")
    retriever = MemoryRetriever(memory_k, embed) if memory == "retrieval" else None
    if calibrate not in CALIBRATION:
        raise ParameterError(f"calibrate must be one of {', '.join(CALIBRATION)}, got {calibrate!r}")
    choose_item = Chooser(backend, calibrate=calibrate != "none")
    choose = Chooser(backend, calibrate=calibrate == "all")

    def recall(entries: list[str], query: str) -> str:
        return " ".join(retriever.recall(entries, query) if retriever is not None else entries)

    profiles = build_profiles(dataset)
    rng = np.random.default_rng(seed)
    chosen = [profiles[i] for i in sorted(rng.choice(len(profiles), size=min(agents, len(profiles)), replace=False))]
    titles = {r["item_id"]: str(r.get("title") or r["item_id"]) for r in dataset.items.records}
    settings = {"dataset": dataset.name, "recommender": type(recommender).__name__, "agents": len(chosen),
                "pages": pages, "items_per_page": items_per_page, "seed": seed, "memory": memory,
                "calibrate": calibrate, "users": [p.user_id for p in chosen]}
    state_path = Path(state) if state is not None else None
    saved = _load_state(state_path, settings) if state_path is not None else {"records": [], "current": None}
    records: list[dict[str, Any]] = saved["records"]
    started = time.perf_counter()

    def checkpoint(current: dict[str, Any] | None) -> None:
        if state_path is not None:
            _save_state(state_path, {"settings": settings, "records": records, "current": current})

    for index in tqdm(range(len(records), len(chosen)), desc="agent4rec", unit="agent", disable=not progress):
        profile = chosen[index]
        ranked = recommender.recommend([profile.history[-20:]], pages * items_per_page,
                                       exclude=[set(profile.history)], users=[profile.user_id])[0]
        current = saved["current"] if saved.get("current") and saved["current"]["index"] == index else {
            "index": index, "pages_seen": 0, "left": False, "memories": [], "feelings": [], "watched": 0,
            "shown": 0, "ratings": [], "likes": 0}
        saved["current"] = None
        memories = current["memories"]
        agent = profile.describe()
        for page in range(current["pages_seen"], pages):
            if current["left"]:
                break
            shown = ranked[page * items_per_page : (page + 1) * items_per_page]
            if not shown:
                break
            watched, rated = [], []
            for item in shown:
                recalled = recall(memories, titles[item])
                ask = _watch_prompt(agent, recalled, titles[item])
                ask_free = _watch_prompt(agent, recalled, CONTENT_FREE)
                if choose_item(ask, ["yes", "no"], ask_free) == 0:
                    watched.append(item)
                    rate = " yes. How would you rate it from 1 to 5? Rating:"
                    rated.append(1 + choose_item(ask + rate, ["1", "2", "3", "4", "5"], ask_free + rate))
            current["watched"] += len(watched)
            current["shown"] += len(shown)
            current["ratings"].extend(rated)
            current["likes"] += sum(r == 5 for r in rated)
            disliked = [titles[i] for i in shown if i not in watched]
            memories.append(f"The recommender recommended on page {page + 1}: {'; '.join(titles[i] for i in shown)}, "
                            f"among them, I watched {'; '.join(titles[i] for i in watched) or 'nothing'} and rate them "
                            f"{', '.join(map(str, rated)) or '-'} respectively. I dislike the rest: "
                            f"{'; '.join(disliked) or 'none'}.")
            feeling = EMOTIONS[choose(_feel_prompt(agent, memories[-1]), EMOTIONS, _feel_prompt(agent, CONTENT_FREE))]
            current["feelings"].append(feeling)
            memories.append(f"After page {page + 1} I felt {feeling}.")
            if page >= 1:
                suits = choose(_reflect_prompt(agent, " ".join(memories)), ["yes", "no"],
                               _reflect_prompt(agent, CONTENT_FREE)) == 0
                memories.append(f"Reflection: this recommender {'suits' if suits else 'does not suit'} my taste.")
            current["pages_seen"] = page + 1
            if page + 1 < pages:
                fatigue = " You are a little bit tired." if page >= 1 else ""
                decision = choose(_next_prompt(agent, " ".join(memories), fatigue), ["[NEXT]", "[EXIT]"],
                                  _next_prompt(agent, CONTENT_FREE, fatigue))
                current["left"] = decision == 1
            checkpoint(current)
        score = 1 + choose(_final_prompt(agent, " ".join(memories)), [str(i) for i in range(1, 11)],
                           _final_prompt(agent, CONTENT_FREE))
        records.append({"user_id": profile.user_id, "traits": [profile.activity, profile.conformity,
                                                                 profile.diversity],
                        "exit_page": current["pages_seen"], "satisfaction": score, "feelings": current["feelings"],
                        "memory": memories, "watched": current["watched"], "shown": current["shown"],
                        "ratings": current["ratings"], "likes": current["likes"]})
        checkpoint(None)
    ratings_all = [r for record in records for r in record["ratings"]]
    shown_total = sum(r["shown"] for r in records)
    return {
        "method": "Agent4Rec (constrained choices" + ("" if calibrate == "none" else f", {calibrate} calibrated") + ")",
        "calibrate": calibrate,
        "backend": getattr(backend, "name", type(backend).__name__),
        "recommender": type(recommender).__name__,
        "agents": len(chosen), "pages": pages, "items_per_page": items_per_page, "seed": seed, "memory": memory,
        "metrics": {
            "view_rate": sum(r["watched"] for r in records) / max(shown_total, 1),
            "mean_rating": float(np.mean(ratings_all)) if ratings_all else float("nan"),
            "likes_per_page": float(np.mean([r["likes"] / max(r["exit_page"], 1) for r in records]))
            if records else 0.0,
            "mean_exit_page": float(np.mean([r["exit_page"] for r in records])) if records else 0.0,
            "mean_satisfaction": float(np.mean([r["satisfaction"] for r in records])) if records else float("nan"),
            "satisfied_pages": float(np.mean([f == "satisfied" for r in records for f in r["feelings"]]))
            if records else 0.0,
        },
        "seconds_per_agent": (time.perf_counter() - started) / max(len(chosen), 1),
        "records": records,
    }
