"""Agents over semid items. :mod:`.items_db` builds the item database; :mod:`.sql_tool` is the closed SQL tool."""

from .items_db import TABLE, build_items_db
from .sql_tool import ALLOWED_FUNCTIONS, QueryRefused, QueryResult, SafeSQL

__all__ = ["ALLOWED_FUNCTIONS", "QueryRefused", "QueryResult", "SafeSQL", "TABLE", "build_items_db"]
