"""Agents over semid items: the item database (:mod:`.items_db`), the closed SQL tool (:mod:`.sql_tool`),
and InteRecAgent's tools (:mod:`.interec`), planners (:mod:`.planners`) and user simulator (:mod:`.simulator`)."""

from .agent4rec import CONTENT_FREE, EMOTIONS, AgentProfile, Chooser, MemoryRetriever, build_profiles, simulate_agents
from .interec import TOOLS, Agent, simulate, validate_plan
from .items_db import TABLE, build_items_db
from .planners import ConstrainedPlanner, LLMPlanner, RulePlanner
from .sql_tool import ALLOWED_FUNCTIONS, QueryRefused, QueryResult, SafeSQL

__all__ = [
    "ALLOWED_FUNCTIONS",
    "Agent",
    "AgentProfile",
    "CONTENT_FREE",
    "Chooser",
    "ConstrainedPlanner",
    "EMOTIONS",
    "LLMPlanner",
    "MemoryRetriever",
    "QueryRefused",
    "QueryResult",
    "RulePlanner",
    "SafeSQL",
    "TABLE",
    "TOOLS",
    "build_items_db",
    "build_profiles",
    "simulate",
    "simulate_agents",
    "validate_plan",
]
