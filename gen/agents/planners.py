"""InteRecAgent's planners: who writes the tool plan an :class:`~semid.gen.agents.interec.Agent` runs.

- :class:`RulePlanner`: deterministic rules, the baseline and the fallback for any refused plan;
- :class:`LLMPlanner`: the LLM writes the JSON plan freely (one call);
- :class:`ConstrainedPlanner`: the LLM decodes the plan under the plan grammar, so it is always valid.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from semid.errors import ParameterError

from .interec import TOOLS

if TYPE_CHECKING:
    from .interec import Agent

__all__ = ["ConstrainedPlanner", "LLMPlanner", "RulePlanner"]


class RulePlanner:
    """The deterministic planner: a baseline and a fixture (the research notes' "oracle-ish" rules).

    It reads a price bound ("under 20 dollars"), a brand ("from brand X"), what is looked for
    ("looking for some night creams": every word of four letters or more must appear in the
    title or the categories) and words the title should hold ("it should be a ... product"),
    and files them as one hard filter; a quoted seed title ("similar to 'X'") adds a soft
    filter; then ranks by similarity when there are seeds, otherwise by ``ranking``
    (``popularity``, or ``preference``: the agent's recommender over what the user is known
    to like, popularity when it has neither), and shows five items.
    """

    RANKINGS = ("popularity", "preference")

    def __init__(self, ranking: str = "popularity"):
        if ranking not in self.RANKINGS:
            raise ParameterError(f"rule planner: ranking must be one of {', '.join(self.RANKINGS)}, got {ranking!r}")
        self.ranking = ranking

    _PRICE = re.compile(r"(?:under|below|less than|cheaper than)\s*\$?\s*(\d+(?:\.\d+)?)", re.I)
    _BRAND = re.compile(r"brand\s+([A-Za-z0-9&' -]{2,30})", re.I)
    _WANTED = re.compile(r"(?:looking for|searching for|i want|i need|show me)\s+(?:some|an|a|the)?\s*"
                         r"([a-z0-9&' -]{3,60}?)\s*(?:[.,!?;]|$)", re.I)
    _TITLE = re.compile(r"should be an?\s+([a-z0-9&' -]{3,80}?)\s+product", re.I)
    _VAGUE = frozenset({"thing", "things", "something", "gift", "gifts", "item", "items", "product", "products",
                        "recommendation", "recommendations", "good", "nice", "great", "stuff", "else",
                        # the price and brand clauses that may share the sentence
                        "under", "below", "less", "than", "cheaper", "dollar", "dollars", "price", "from",
                        "brand", "with", "that", "this", "about", "around", "some", "please"})

    @classmethod
    def _words(cls, phrase: str) -> list[str]:
        words = [w.lower() for w in re.findall(r"[A-Za-z0-9]{4,}", phrase)]
        # "creams" finds "Cream" too; the stem keeps the condition a plain substring test
        return [w[:-1] if w.endswith("s") and len(w) > 4 else w for w in words if w.lower() not in cls._VAGUE]

    def plan(self, message: str, context: str, agent: Agent) -> list[dict[str, Any]]:
        plan: list[dict[str, Any]] = []
        conditions = []
        price = self._PRICE.search(message)
        if price:
            conditions.append(f"price IS NOT NULL AND price < {float(price.group(1))}")
        for word in self._BRAND.findall(message)[:1]:
            conditions.append("lower(brand) LIKE '%" + word.strip().lower().replace("'", "''") + "%'")
        for phrase in self._WANTED.findall(message)[:1]:
            for term in self._words(phrase):
                term = term.replace("'", "''")
                conditions.append(f"(lower(title) LIKE '%{term}%' OR lower(categories) LIKE '%{term}%')")
        for phrase in self._TITLE.findall(message)[:1]:
            for term in self._words(phrase):
                conditions.append("lower(title) LIKE '%" + term.replace("'", "''") + "%'")
        if conditions:
            plan.append({"tool_name": "hard_filter", "input": "SELECT item_id FROM items WHERE " + " AND ".join(conditions)})
        seeds = re.findall(r"(?:like|similar to)\s+['\"]([^'\"]+)['\"]", message, re.I)
        if seeds:
            plan.append({"tool_name": "soft_filter", "input": ";; ".join(seeds)})
        plan.append({"tool_name": "rank", "input": {"schema": "similarity" if seeds else self.ranking}})
        plan.append({"tool_name": "map", "input": "5"})
        return plan


class LLMPlanner:
    """The LLM writes the plan (one call); a plan that is not valid JSON of the schema falls back to rules."""

    PROMPT = (
        "You are a recommender assistant with tools over an items table ({columns}). Tools: store (titles "
        "separated by ';;'), lookup (one SQL SELECT on items), hard_filter (SELECT item_id FROM items WHERE ...), "
        "soft_filter (seed titles separated by ';;'), rank ({{\"schema\": \"popularity\"|\"similarity\"|"
        "\"preference\", \"prefer\": [titles], \"unwanted\": [titles]}}), map (how many items to show). "
        "Answer with only a JSON list of steps like [{{\"tool_name\": \"hard_filter\", \"input\": \"SELECT item_id "
        "FROM items WHERE price < 20\"}}, {{\"tool_name\": \"rank\", \"input\": {{\"schema\": \"popularity\"}}}}, "
        "{{\"tool_name\": \"map\", \"input\": \"5\"}}].\n{context}User: {message}\nPlan:"
    )

    def __init__(self, backend, *, max_new_tokens: int = 160):
        self.backend, self.max_new_tokens = backend, max_new_tokens

    def plan(self, message: str, context: str, agent: Agent) -> list[dict[str, Any]]:
        columns = "item_id, title, categories, brand, price, description, popularity"
        text = self.backend.generate([self.PROMPT.format(columns=columns, context=context, message=message)],
                                     max_new_tokens=self.max_new_tokens)[0]
        start, end = text.find("["), text.rfind("]")
        if start < 0 or end <= start:
            raise ParameterError(f"the model's plan is not a JSON list: {text[:80]!r}")
        try:
            return json.loads(text[start : end + 1])
        except json.JSONDecodeError as exc:
            raise ParameterError(f"the model's plan is not valid JSON ({exc.msg})") from None


def _tool_chains(max_steps: int) -> list[tuple[str, ...]]:
    """Every chain of distinct non-``map`` tools of 1..``max_steps`` steps, ``rank`` only last (then ``map``)."""
    from itertools import permutations

    free = [t for t in TOOLS if t not in ("map", "rank")]
    chains: list[tuple[str, ...]] = []
    for n in range(1, max_steps + 1):
        for body in permutations(free, n):
            chains.append(body)
        for body in permutations(free, n - 1):
            chains.append((*body, "rank"))
    return chains


class ConstrainedPlanner:
    """A plan decoded under the plan grammar, so a small model always writes a valid plan.

    The grammar: ``plan := step{1..max_steps} map``; ``step := tool input``; the tool
    chain is one of :func:`_tool_chains` (distinct tools, ``rank`` last), chosen by beam
    search that can only write one of them (``LocalCausalLM.rank_options``); then each
    input is decoded for its tool: ``rank``'s schema among its three values (constrained
    again), SQL conditions and seed titles as free text after a fixed prefix (SQL is
    checked by the tools' closed SQL layer when it runs, as with every planner). The
    JSON is assembled by semid, never parsed from the model, so structure errors cannot
    happen; what can fail is a tool input, which the turn reports as a failed tool.

    Args:
        backend: a local :class:`semid.gen.llm.backend.LocalCausalLM` (it needs ``rank_options``).
        max_steps: tools before ``map`` at most.
        max_new_tokens: length of a free-text input.

    Raises:
        ParameterError: a backend that cannot constrain its decoding (a server).
    """

    PROMPT = (
        "You are a recommender assistant with tools over an items table (item_id, title, categories, brand, "
        "price, description, popularity). Tools: lookup (answer a question about items with SQL), hard_filter "
        "(keep items matching conditions on price, brand, category or title), soft_filter (items similar to "
        "titles the user names), store (remember titles the user mentions), rank (order the kept items by "
        "popularity, by similarity to the user's titles, or by the user's preference), map (show the top "
        "items).\n{context}User: {message}\nTools to call, in order:"
    )
    INPUT_PROMPTS = {
        "hard_filter": "{base} hard_filter.\nSQL: SELECT item_id FROM items WHERE",
        "lookup": "{base} lookup.\nSQL: SELECT",
        "soft_filter": "{base} soft_filter.\nTitles the user names, separated by ';;':",
        "store": "{base} store.\nTitles the user mentions, separated by ';;':",
        "rank": "{base} rank.\nOrder by:",
    }

    def __init__(self, backend, *, max_steps: int = 3, max_new_tokens: int = 48):
        if not hasattr(backend, "rank_options"):
            raise ParameterError("the constrained planner needs a local model (--llm); a server cannot constrain "
                                 "its decoding (use --planner llm)")
        if max_steps < 1:
            raise ParameterError(f"max_steps must be >= 1, got {max_steps}")
        self.backend, self.max_new_tokens = backend, max_new_tokens
        self.chains = _tool_chains(max_steps)

    def _free_text(self, prompt: str) -> str:
        text = self.backend.generate([prompt], max_new_tokens=self.max_new_tokens)[0]
        return text.strip().splitlines()[0].strip() if text.strip() else ""

    def plan(self, message: str, context: str, agent: Agent) -> list[dict[str, Any]]:
        base = self.PROMPT.format(context=context, message=message)
        options = [" " + ", ".join(chain) for chain in self.chains]
        chain = self.chains[self.backend.rank_options(base, options, num_beams=4)[0][0]]
        plan: list[dict[str, Any]] = []
        for tool in chain:
            prompt = self.INPUT_PROMPTS[tool].format(base=base + " " + ", ".join(chain) + "\nInput of")
            if tool == "rank":
                schemas = ("popularity", "similarity", "preference")
                choice = self.backend.rank_options(prompt, [" " + s for s in schemas], num_beams=3)[0][0]
                plan.append({"tool_name": "rank", "input": {"schema": schemas[choice]}})
            elif tool == "hard_filter":
                plan.append({"tool_name": tool, "input": "SELECT item_id FROM items WHERE "
                                                         + self._free_text(prompt).rstrip(";")})
            elif tool == "lookup":
                plan.append({"tool_name": tool, "input": "SELECT " + self._free_text(prompt).rstrip(";")})
            else:
                plan.append({"tool_name": tool, "input": self._free_text(prompt)})
        plan.append({"tool_name": "map", "input": "5"})
        return plan
