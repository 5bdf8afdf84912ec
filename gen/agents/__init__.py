"""Agents over semid items: the item database (:mod:`.items_db`), the closed SQL tool (:mod:`.sql_tool`),
and InteRecAgent's tools, planners and user simulator (:mod:`.interec`)."""

from .interec import TOOLS, Agent, LLMPlanner, RulePlanner, simulate, validate_plan
from .items_db import TABLE, build_items_db
from .sql_tool import ALLOWED_FUNCTIONS, QueryRefused, QueryResult, SafeSQL

__all__ = [
    "ALLOWED_FUNCTIONS",
    "Agent",
    "LLMPlanner",
    "QueryRefused",
    "QueryResult",
    "RulePlanner",
    "SafeSQL",
    "TABLE",
    "TOOLS",
    "build_items_db",
    "simulate",
    "validate_plan",
]
