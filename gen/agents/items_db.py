"""The item database an agent queries: one SQLite table built from any semid dataset.

``items(item_id TEXT PRIMARY KEY, title, categories, brand, price REAL,
description, popularity INTEGER, ...)``: ``categories`` is the path joined with
" > ", ``popularity`` the item's count in the training split (validation and
test items are never counted), and every other scalar field of the dataset's
items becomes a TEXT column. The file is written to a temporary name and renamed,
so a reader never sees half a database.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
from collections import Counter
from contextlib import closing
from pathlib import Path

from semid.errors import ArtifactError

__all__ = ["TABLE", "build_items_db", "check_items_db"]

TABLE = "items"
_FIXED = ("item_id", "title", "categories", "brand", "price", "description", "popularity")


def _column(name: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_").lower()
    return clean if clean and not clean[0].isdigit() else f"f_{clean}"


def build_items_db(dataset, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write the items of ``dataset`` as a SQLite database at ``path``; returns the path.

    Raises:
        ArtifactError: ``path`` exists and ``overwrite`` is false.
    """
    from semid.evaluation.split import leave_one_out

    path = Path(path)
    if path.exists() and not overwrite:
        raise ArtifactError(f"{path} already exists; pass --overwrite to replace it")
    counts = Counter(i for seq in leave_one_out(dataset).train_sequences for i in seq)
    extra = sorted({_column(k) for r in dataset.items.records for k, v in r.items()
                    if _column(k) not in _FIXED and isinstance(v, (str, int, float)) and not isinstance(v, bool)})
    columns = [*_FIXED, *extra]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        with sqlite3.connect(tmp) as db:
            db.execute(f"CREATE TABLE {TABLE} (item_id TEXT PRIMARY KEY, title TEXT, categories TEXT, brand TEXT, "
                       "price REAL, description TEXT, popularity INTEGER"
                       + "".join(f", {c} TEXT" for c in extra) + ")")
            rows = []
            for record in dataset.items.records:
                mapped = {_column(k): v for k, v in record.items()}
                categories = record.get("categories") or []
                try:
                    price = float(record.get("price")) if record.get("price") not in (None, "") else None
                except (TypeError, ValueError):
                    price = None
                rows.append((
                    record["item_id"], record.get("title"),
                    " > ".join(map(str, categories)) if isinstance(categories, list) else str(categories),
                    record.get("brand"), price, record.get("description") if isinstance(record.get("description"), str)
                    else None, counts.get(record["item_id"], 0),
                    *[None if mapped.get(c) is None else str(mapped[c]) for c in extra],
                ))
            db.executemany(f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_items_db(path: str | os.PathLike[str], item_ids=None) -> None:
    """Refuse a database the agent's tools cannot use, before any turn runs.

    Checks that ``path`` is a SQLite file with an ``items`` table holding every column the tools
    read (:data:`_FIXED`) and, given ``item_ids``, every item of the dataset.

    Raises:
        ArtifactError: naming the file, what is missing, and how to rebuild it.
    """
    path = Path(path)
    rebuild = "delete it and let `semid chat` build it from --data, or pass another --db"
    if not path.is_file():
        raise ArtifactError(f"{path}: item database not found; {rebuild}")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            found = [row[1] for row in db.execute(f"PRAGMA table_info({TABLE})")]
            missing = [c for c in _FIXED if c not in found]
            if not found:
                raise ArtifactError(f"{path} has no table {TABLE!r} (tables: "
                                    f"{[r[0] for r in db.execute('SELECT name FROM sqlite_master')] or 'none'}); "
                                    f"{rebuild}")
            if missing:
                raise ArtifactError(f"{path}: table {TABLE!r} lacks the column(s) {', '.join(missing)} that the "
                                    f"agent's tools read (it has {', '.join(found)}); {rebuild}")
            if item_ids is not None:
                stored = {row[0] for row in db.execute(f"SELECT item_id FROM {TABLE}")}
                absent = [i for i in item_ids if i not in stored]
                if absent:
                    raise ArtifactError(f"{path}: {len(absent)} of the dataset's items are not in {TABLE!r} "
                                        f"(first: {absent[0]!r}); it was built from another dataset; {rebuild}")
    except sqlite3.DatabaseError as exc:
        raise ArtifactError(f"{path} is not a readable SQLite database ({exc}); {rebuild}") from None

