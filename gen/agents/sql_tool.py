"""The SQL tool of an agent, closed: exactly one SELECT on the items table, read-only, bounded.

A language model writes this SQL, so it is treated as hostile input. Four
independent locks, each enough on its own for the attacks it covers:

1. **Parse** (sqlglot, a maintained SQL parser; never regexes): exactly one
   statement, a plain ``SELECT``; no ``WITH`` (recursive CTEs never end), no
   joins (cartesian products), no table but ``items`` (no schema qualifier, no
   ``sqlite_master``), no function outside :data:`ALLOWED_FUNCTIONS`, at most
   :data:`MAX_QUERY_CHARS` characters.
2. **Read-only connection**: ``file:...?mode=ro`` and ``PRAGMA query_only``, so
   no write can happen even if a statement got through.
3. **Authorizer**: sqlite asks before every action; only ``SELECT``, reads of
   the ``items`` table and the allowed functions pass (no ``ATTACH``, ``PRAGMA``,
   writes, other tables, ``load_extension``).
4. **Bounds**: a progress handler aborts a query after ``time_limit`` seconds,
   and at most ``row_limit`` rows come back.

Every refusal is a :class:`QueryRefused` with a one-line reason; the database
file is never modified and no file is created.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semid.errors import ParameterError

from .items_db import TABLE

__all__ = ["ALLOWED_FUNCTIONS", "MAX_QUERY_CHARS", "QueryRefused", "QueryResult", "SafeSQL"]

MAX_QUERY_CHARS = 2000

#: Scalar and aggregate functions a property filter needs; everything else is refused.
ALLOWED_FUNCTIONS = frozenset({
    "abs", "avg", "coalesce", "count", "ifnull", "instr", "length", "like", "lower", "ltrim", "max", "min",
    "nullif", "rand", "random", "replace", "round", "rtrim", "str_position", "substr", "substring", "sum", "total",
    "trim", "upper",
})


class QueryRefused(ParameterError):
    """The SQL was refused (the message says why); nothing ran."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def _check(sql: str) -> None:
    import sqlglot
    from sqlglot import exp

    import logging

    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its "falling back to Command" notes are not ours
    if len(sql) > MAX_QUERY_CHARS:
        raise QueryRefused(f"refused: the query has {len(sql)} characters, more than {MAX_QUERY_CHARS}")
    try:
        statements = [s for s in sqlglot.parse(sql, read="sqlite") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise QueryRefused(f"refused: not valid SQL ({str(exc).splitlines()[0][:120]})") from None
    except sqlglot.errors.TokenError as exc:
        raise QueryRefused(f"refused: not valid SQL ({str(exc)[:120]})") from None
    if len(statements) != 1:
        raise QueryRefused(f"refused: exactly one statement is allowed, got {len(statements)}")
    statement = statements[0]
    if not isinstance(statement, exp.Select):
        raise QueryRefused(f"refused: only SELECT is allowed, got {statement.key.upper()}")
    if statement.find(exp.With, exp.CTE):
        raise QueryRefused("refused: WITH / common table expressions are not allowed")
    if statement.find(exp.Join):
        raise QueryRefused("refused: joins are not allowed (one table, no cartesian products)")
    for node in statement.find_all(exp.Union, exp.Intersect, exp.Except):
        raise QueryRefused(f"refused: {node.key.upper()} is not allowed")
    tables = list(statement.find_all(exp.Table))
    if not tables:
        raise QueryRefused(f"refused: the query must read the {TABLE!r} table")
    for table in tables:
        if table.name.lower() != TABLE or table.args.get("db") or table.args.get("catalog"):
            raise QueryRefused(f"refused: only the {TABLE!r} table may be read, got {table.sql()!r}")
    for function in statement.find_all(exp.Func):
        if isinstance(function, (exp.Binary, exp.Unary, exp.Connector)) and not isinstance(function, exp.Anonymous):
            continue  # operators (AND, OR, =, NOT, ...) that sqlglot models as functions
        name = (function.name if isinstance(function, exp.Anonymous) else function.sql_name()).lower()
        if name not in ALLOWED_FUNCTIONS:
            raise QueryRefused(f"refused: function {name!r} is not allowed")


class SafeSQL:
    """Read-only, bounded SELECTs on the items table of a database written by
    :func:`semid.gen.agents.items_db.build_items_db`."""

    def __init__(self, path: str | Path, *, row_limit: int = 100, time_limit: float = 2.0):
        self.path = Path(path)
        if not self.path.is_file():
            raise ParameterError(f"item database not found: {self.path}")
        self.row_limit, self.time_limit = row_limit, time_limit

    def _authorizer(self, action, arg1, arg2, dbname, source):
        if action == sqlite3.SQLITE_SELECT:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ and (arg1 or "").lower() == TABLE and dbname in (None, "main"):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in ALLOWED_FUNCTIONS:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    def query(self, sql: str) -> QueryResult:
        """Run ``sql`` if every lock lets it through.

        Raises:
            QueryRefused: a parse-level refusal, an action the authorizer denied,
                or the time limit (the message names which).
        """
        _check(sql)
        return self._run(sql)

    def _run(self, sql: str) -> QueryResult:
        """Locks 2-4 alone (read-only connection, authorizer, bounds); :meth:`query` adds the parse check."""
        uri = f"file:{self.path.resolve()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, timeout=1.0)
        try:
            connection.execute("PRAGMA query_only = ON")
            connection.set_authorizer(self._authorizer)
            deadline = time.monotonic() + self.time_limit
            connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
            try:
                cursor = connection.execute(sql)
                rows = cursor.fetchmany(self.row_limit + 1)
            except sqlite3.DatabaseError as exc:
                message = str(exc)
                if "interrupted" in message:
                    raise QueryRefused(f"refused: the query ran longer than {self.time_limit} s") from None
                if "not authorized" in message or "prohibited" in message:
                    raise QueryRefused(f"refused by the authorizer: {message}") from None
                raise QueryRefused(f"refused: {message}") from None
            columns = [d[0] for d in cursor.description or []]
            return QueryResult(columns, rows[: self.row_limit], len(rows) > self.row_limit)
        finally:
            connection.close()
