"""InteRecAgent (Huang et al., TOIS 2025; microsoft/RecAI): an LLM plans tool calls over a candidate buffer.

Each turn the candidate buffer starts as the whole catalogue; a plan, one JSON
list ``[{"tool_name": ..., "input": ...}, ...]``, runs in order:

| tool | input | effect |
|---|---|---|
| ``store`` | ``"Title A;; Title B"`` | the buffer becomes the catalogue items with the nearest titles |
| ``lookup`` | one SELECT | answers a question from the item database (the closed :class:`SafeSQL`) |
| ``hard_filter`` | one SELECT returning ``item_id`` | keeps the buffer items the query returns |
| ``soft_filter`` | ``"Title A;; Title B"`` | keeps buffer items whose item-item CF similarity to the seeds is in the top 5% |
| ``rank`` | ``{"schema": popularity / similarity / preference, "prefer": [...], "unwanted": [...]}`` | orders the buffer |
| ``map`` | ``n`` | the first ``n`` buffer items become the answer; the buffer is cleared |

As in the reference: unknown tools are refused, a plan without ``map`` gets
``map 5`` appended, the user's remembered likes and dislikes join the ranking's
``prefer`` / ``unwanted``. Plans come from the LLM (:class:`~semid.gen.agents.planners.LLMPlanner`; a plan
that does not parse or validate is counted and the rule planner takes over) or
from :class:`~semid.gen.agents.planners.RulePlanner`, the deterministic baseline. Title matching uses
edit-distance ratios (rapidfuzz) where the reference embeds titles with GTE.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from semid.errors import ParameterError

from .sql_tool import QueryRefused, SafeSQL

__all__ = ["TOOLS", "Agent", "simulate", "validate_plan"]

logger = logging.getLogger(__name__)

TOOLS = ("store", "lookup", "hard_filter", "soft_filter", "rank", "map")
MAX_CANDIDATES = 1000


def validate_plan(plan: Any) -> list[dict[str, Any]]:
    """A plan checked against the schema; ``map`` appended when missing.

    Raises:
        ParameterError: not a list of ``{"tool_name", "input"}`` objects with known tool names.
    """
    if not isinstance(plan, list) or not plan:
        raise ParameterError("a plan must be a non-empty JSON list of tool calls")
    out = []
    for step in plan:
        if not isinstance(step, dict) or set(step) - {"tool_name", "input"} or "tool_name" not in step:
            raise ParameterError(f"a tool call must be {{\"tool_name\", \"input\"}}, got {str(step)[:80]}")
        if step["tool_name"] not in TOOLS:
            raise ParameterError(f"unknown tool {step['tool_name']!r}; tools: {', '.join(TOOLS)}")
        out.append({"tool_name": step["tool_name"], "input": step.get("input", "")})
    if out[-1]["tool_name"] != "map":
        out.append({"tool_name": "map", "input": "5"})
    return out


@dataclass
class Profile:
    """What the agent remembers about the user across turns."""

    like: list[str] = field(default_factory=list)
    unwanted: list[str] = field(default_factory=list)


class Agent:
    """The tools, the buffer, the memories, and one :meth:`turn` per user message.

    Args:
        dataset: the catalogue and training interactions (popularity, item-item CF).
        database: an item database of the dataset (:func:`build_items_db`).
        planner: :class:`~semid.gen.agents.planners.RulePlanner` or :class:`~semid.gen.agents.planners.LLMPlanner`.
        recommender: optional semid recommender for ``rank`` with ``schema=preference``.
        memory_chars: dialogue memory budget (oldest turns dropped first).
        critic: optional LLM backend that judges each answer (reflection); a rejected answer
            is planned again with the rejection in context.
        max_reflections: re-plans per turn at most (with a critic).
    """

    def __init__(self, dataset, database, planner, *, recommender=None, memory_chars: int = 2000, critic=None,
                 max_reflections: int = 1):
        from semid.evaluation.split import leave_one_out

        self.items = list(dataset.items.item_ids)
        self.titles = {r["item_id"]: str(r.get("title") or r["item_id"]) for r in dataset.items.records}
        self.position = {item: i for i, item in enumerate(self.items)}
        split = leave_one_out(dataset)
        counts = Counter(i for seq in split.train_sequences for i in seq)
        self.popularity = np.array([math.log(counts.get(i, 0) + 1) for i in self.items])
        self._cooccurrence(split.train_sequences)
        from .items_db import check_items_db

        check_items_db(database, self.items)
        self.sql = SafeSQL(database, row_limit=102)  # lookups: answers sampled down, as the reference
        self.filter_sql = SafeSQL(database, row_limit=100_000)  # filters: every matching id
        self.planner, self.recommender, self.memory_chars = planner, recommender, memory_chars
        self.profile = Profile()
        self.dialogue: list[tuple[str, str]] = []
        self.plan_failures = 0
        if max_reflections < 0:
            raise ParameterError(f"max_reflections must be >= 0, got {max_reflections}")
        self.critic, self.max_reflections, self.reflections = critic, max_reflections, 0
        self.buffer: list[str] = []
        self.similarity: dict[str, float] = {}

    def _cooccurrence(self, sequences) -> None:
        import scipy.sparse as sp

        rows, cols = [], []
        for u, seq in enumerate(sequences):
            for item in set(seq):
                rows.append(u)
                cols.append(self.position[item])
        matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sequences), len(self.items)))
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(0))).ravel() + 1e-9
        self._user_item, self._norms = matrix.tocsc(), norms

    def _cf_row(self, seeds: list[int]) -> np.ndarray:
        """Mean item-item cosine similarity of every item to the seed items."""
        seed = self._user_item[:, seeds]
        co = np.asarray((self._user_item.T @ seed).todense())  # (n_items, n_seeds)
        return (co / (self._norms[:, None] * self._norms[seeds][None, :])).mean(1)

    # -- tools -----------------------------------------------------------------------------
    def match_titles(self, text: str) -> list[str]:
        from rapidfuzz import fuzz, process

        names = [n.strip() for n in str(text).split(";;") if n.strip()]
        choices = [self.titles[i] for i in self.items]
        out = []
        for name in names:
            best = process.extractOne(name, choices, scorer=fuzz.token_set_ratio, score_cutoff=60)
            if best is not None and self.items[best[2]] not in out:
                out.append(self.items[best[2]])
        return out

    def run_tool(self, name: str, argument: Any) -> str:
        if name == "store":
            self.buffer = self.match_titles(argument)
            return f"stored {len(self.buffer)} candidates"
        if name == "lookup":
            result = self.sql.query(str(argument))
            rows = [dict(zip(result.columns, row)) for row in result.rows]
            return json.dumps(rows, ensure_ascii=False, default=str)[:2000]
        if name == "hard_filter":
            result = self.filter_sql.query(str(argument))
            if "item_id" not in result.columns:
                raise QueryRefused("refused: hard_filter's SELECT must return item_id")
            column = result.columns.index("item_id")
            keep = {row[column] for row in result.rows}
            self.buffer = [i for i in self.buffer if i in keep][:MAX_CANDIDATES]
            return f"{len(self.buffer)} candidates left"
        if name == "soft_filter":
            seeds = [self.position[i] for i in self.match_titles(argument)]
            if not seeds:
                return "no seed item found"
            row = self._cf_row(seeds)
            seed_ids = {self.items[s] for s in seeds}  # the seeds themselves are not recommendations
            scores = {i: float(row[self.position[i]]) for i in self.buffer if i not in seed_ids}
            threshold = np.quantile(list(scores.values()), 0.95) if scores else 0.0
            self.buffer = [i for i in self.buffer if i in scores and scores[i] >= threshold and scores[i] > 0]
            self.similarity = {i: scores[i] for i in self.buffer}
            return f"{len(self.buffer)} candidates similar to {len(seeds)} seeds"
        if name == "rank":
            spec = argument if isinstance(argument, dict) else json.loads(argument or "{}")
            prefer = self.match_titles(";;".join(spec.get("prefer", []))) + self.profile.like
            unwanted = set(self.match_titles(";;".join(spec.get("unwanted", [])))) | set(self.profile.unwanted)
            schema = spec.get("schema", "popularity")
            if schema == "preference" and (self.recommender is None or not prefer):
                schema = "similarity" if self.similarity else "popularity"
            if schema == "similarity" and not self.similarity:
                schema = "popularity"
            pool = [i for i in self.buffer if i not in unwanted and i not in set(prefer)]
            if schema == "preference":
                order = self.recommender.recommend([prefer], len(self.items), exclude=[set(prefer) | unwanted])[0]
                rank = {item: r for r, item in enumerate(order)}
                pool.sort(key=lambda i: rank.get(i, len(rank)))
            elif schema == "similarity":
                pool.sort(key=lambda i: -self.similarity.get(i, 0.0))
            else:
                pool.sort(key=lambda i: -self.popularity[self.position[i]])
            self.buffer = pool
            return f"ranked {len(pool)} candidates by {schema}"
        if name == "map":
            n = max(1, min(20, int(str(argument or "5").strip() or 5)))
            chosen, self.buffer = self.buffer[:n], []
            return json.dumps([self.titles[i] for i in chosen], ensure_ascii=False)
        raise ParameterError(f"unknown tool {name!r}")

    # -- a turn ----------------------------------------------------------------------------
    def turn(self, message: str) -> dict[str, Any]:
        """Plan, run and answer one user message; returns the answer, the items and the tool trace.

        With a critic, an answer it rejects is planned again (the rejected plan and answer in
        the planner's context), at most ``max_reflections`` times; ``reflections`` counts them.
        """
        self._remember(message)
        context = self._context()
        plan = self._plan(message, context)
        result = self._execute(plan)
        rounds = 0
        while rounds < self.max_reflections and self.critic is not None and not self._accepted(message, result):
            rounds += 1
            hint = (f"{context}(A plan calling {', '.join(s['tool_name'] for s in plan)} answered: "
                    f"{result['answer'][:300]!r}; a critic judged that it does not satisfy the user. "
                    "Plan differently.)\n")
            plan = self._plan(message, hint)
            result = self._execute(plan)
        self.reflections += rounds
        self.dialogue.append((message, result["answer"]))
        return {**result, "reflections": rounds}

    def _plan(self, message: str, context: str) -> list[dict[str, Any]]:
        try:
            return validate_plan(self.planner.plan(message, context, self))
        except (ParameterError, ValueError) as exc:
            self.plan_failures += 1
            logger.info("plan refused (%s); the rule planner takes over", exc)
            from .planners import RulePlanner

            return validate_plan(RulePlanner().plan(message, context, self))

    def _execute(self, plan: list[dict[str, Any]]) -> dict[str, Any]:
        self.buffer, self.similarity = list(self.items), {}
        trace, recommended, answers = [], [], []
        for step in plan:
            try:
                output = self.run_tool(step["tool_name"], step["input"])
            except (ParameterError, ValueError, json.JSONDecodeError) as exc:
                output = f"tool {step['tool_name']} failed: {exc}"
            trace.append({**step, "output": output})
            if step["tool_name"] == "map" and not output.startswith("tool "):
                titles = json.loads(output)
                recommended = [self._title_to_id[t] for t in titles if t in self._title_to_id]
            if step["tool_name"] == "lookup":
                answers.append(output)
        text = " ".join(answers) if answers else ""
        if recommended:
            text += ("\n" if text else "") + "I recommend: " + "; ".join(
                f"{r}. {self.titles[i]}" for r, i in enumerate(recommended, start=1))
        return {"answer": text or "I could not find anything for that.", "items": recommended, "plan": plan,
                "trace": trace}

    CRITIC_PROMPT = ("A user asked a shopping assistant: {message!r}\nThe assistant answered: {answer!r}\n"
                     "Does the answer give what the user asked for? Answer Yes or No. Answer:")

    def _accepted(self, message: str, result: dict[str, Any]) -> bool:
        """The critic's verdict: ``P(Yes) >= P(No)`` as the answer's first word (an LLM scoring call)."""
        prompt = self.CRITIC_PROMPT.format(message=message, answer=result["answer"][:600])
        yes, no = self.critic.score([prompt, prompt], [" Yes", " No"])
        return yes >= no

    @property
    def _title_to_id(self) -> dict[str, str]:
        if not hasattr(self, "_t2i"):
            self._t2i = {t: i for i, t in self.titles.items()}
        return self._t2i

    def _remember(self, message: str) -> None:
        lowered = message.lower()
        for marker, target in (("i like ", self.profile.like), ("i don't like ", self.profile.unwanted),
                               ("i do not like ", self.profile.unwanted)):
            if marker in lowered:
                fragment = message[lowered.index(marker) + len(marker):].split(".")[0]
                for item in self.match_titles(fragment):
                    if item not in target:
                        target.append(item)

    def _context(self) -> str:
        lines, total = [], 0
        for user, agent in reversed(self.dialogue):  # newest first until the budget is spent
            piece = f"User: {user}\nAssistant: {agent}\n"
            if total + len(piece) > self.memory_chars:
                break
            lines.insert(0, piece)
            total += len(piece)
        return "".join(lines)


from .simulator import simulate  # noqa: E402  (the user simulator lives in its own module)
