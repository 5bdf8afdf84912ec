"""The agent's SQL tool is closed: attacks are refused with a reason, the database never changes."""

from __future__ import annotations

import hashlib

import pytest

import semid
from semid.gen.agents import QueryRefused, SafeSQL, build_items_db

ATTACKS = [
    ("SELECT * FROM items; DROP TABLE items", "exactly one statement"),
    ("DROP TABLE items", "only SELECT"),
    ("UPDATE items SET title = 'x'", "only SELECT"),
    ("INSERT INTO items(item_id) VALUES ('x')", "only SELECT"),
    ("DELETE FROM items", "only SELECT"),
    ("REPLACE INTO items(item_id) VALUES ('x')", "only SELECT"),
    ("CREATE TABLE t(x)", "only SELECT"),
    ("ATTACH DATABASE 'evil.db' AS evil", "only SELECT"),
    ("PRAGMA writable_schema = 1", "only SELECT"),
    ("VACUUM INTO 'copy.db'", "only SELECT"),
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c", "WITH"),
    ("SELECT * FROM items WHERE rowid IN (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
     "SELECT x FROM c)", "WITH"),
    ("SELECT * FROM items a, items b, items c", "joins are not allowed"),
    ("SELECT count(*) FROM items JOIN items AS b ON 1 = 1", "joins are not allowed"),
    ("SELECT * FROM sqlite_master", "only the 'items' table"),
    ("SELECT * FROM items UNION SELECT * FROM sqlite_master", "only SELECT"),
    ("SELECT * FROM main.items", "only the 'items' table"),
    ("SELECT * FROM pragma_table_info('items')", "only the 'items' table"),
    ("SELECT load_extension('evil') FROM items", "function 'load_extension'"),
    ("SELECT randomblob(1000000000) FROM items", "function 'randomblob'"),
    ("SELECT * FROM items -- trailing\n; DELETE FROM items", "exactly one statement"),
    ("SELECT * FROM items /* c */ WHERE 1 = 1; VACUUM", "exactly one statement"),
    ("ＳＥＬＥＣＴ * FROM items", "not valid SQL"),  # full-width letters
    ("SELECT * FROM іtems", "only the 'items' table"),  # Cyrillic i
    ("SELECT " + "title, " * 400 + "title FROM items", "more than 2000"),
]


@pytest.fixture()
def database(tmp_path):
    path = build_items_db(semid.load_dataset("builtin:all_beauty_2023"), tmp_path / "items.db")
    return path


def _state(path):
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(p.name for p in path.parent.iterdir())


@pytest.mark.parametrize("sql, reason", ATTACKS)
def test_every_attack_is_refused_and_nothing_changes(database, sql, reason):
    before = _state(database)
    with pytest.raises(QueryRefused, match=reason) as info:
        SafeSQL(database).query(sql)
    assert str(info.value).startswith("refused") and "\n" not in str(info.value)
    assert _state(database) == before  # byte-identical, and no new file (evil.db, copy.db, journals)


def test_enough_attacks_are_covered():
    assert len(ATTACKS) >= 20


def test_legitimate_property_filters_work(database):
    tool = SafeSQL(database, row_limit=3)
    result = tool.query("SELECT item_id, title, popularity FROM items WHERE lower(title) LIKE '%shampoo%' "
                        "AND (price IS NULL OR price < 50) ORDER BY popularity DESC")
    assert result.columns == ["item_id", "title", "popularity"] and len(result.rows) == 3 and result.truncated
    quoted = tool.query("SELECT * FROM items WHERE title = 'a'' OR 1=1; DROP TABLE items --'")
    assert quoted.rows == []  # the "injection" is just a string literal
    count = tool.query("SELECT count(*), max(popularity) FROM items").rows[0]
    assert count[0] == 356


@pytest.mark.parametrize("sql, reason", [
    ("ATTACH DATABASE 'evil.db' AS evil", "authorizer|not authorized|prohibited"),
    ("SELECT * FROM sqlite_master", "authorizer|not authorized|prohibited"),
    ("SELECT load_extension('evil')", "authorizer|not authorized|prohibited|not allowed"),
    ("DELETE FROM items", "authorizer|not authorized|prohibited|readonly|read-only"),
    ("PRAGMA query_only = OFF", "authorizer|not authorized|prohibited"),
])
def test_the_connection_refuses_even_without_the_parse_check(database, sql, reason):
    """Defense in depth: the read-only connection and the authorizer alone stop what the parser would."""
    before = _state(database)
    with pytest.raises(QueryRefused, match=reason):
        SafeSQL(database)._run(sql)
    assert _state(database) == before


def test_a_query_that_never_ends_is_stopped_by_the_time_limit(database):
    tool = SafeSQL(database, time_limit=0.3)
    with pytest.raises(QueryRefused, match="longer than 0.3 s"):
        tool._run("SELECT count(*) FROM items a, items b, items c, items d, items e")
