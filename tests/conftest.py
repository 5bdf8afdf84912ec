"""Shared fixtures: the embedded dataset and a small real Beauty 2014 subset.

Real data under ``shared/data`` is found through ``SEMID_SHARED_DATA`` or next
to the repository (``../shared/data``), as laid out on developer machines and CI.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

import semid
from semid.data import Dataset, ItemTable, Sequences
from semid.evaluation import leave_one_out

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    env = os.environ.get("SEMID_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    return next((c for c in candidates if c.is_dir()), None)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared/data not found (set SEMID_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def all_beauty() -> Dataset:
    """The embedded Amazon 2023 All_Beauty dataset (356 items, 253 users)."""
    return semid.load_dataset("builtin:all_beauty_2023")


@pytest.fixture(scope="session")
def all_beauty_train(all_beauty):
    return leave_one_out(all_beauty).train_sequences


@pytest.fixture(scope="session")
def beauty_small(shared_data) -> Dataset:
    """The first 120 users of Amazon Beauty 2014 and their items (ASIN ids, category paths)."""
    root = shared_data / "amazon_beauty_2014"
    with gzip.open(root / "Beauty.txt.gz", "rt") as handle:
        lines = [next(handle).split() for _ in range(120)]
    meta = {}
    with gzip.open(root / "items.jsonl.gz", "rt") as handle:
        for line in handle:
            record = json.loads(line)
            meta[str(record["item_id"])] = record
    used = sorted({i for line in lines for i in line[1:]}, key=int)
    records = []
    for old in used:
        record = meta[old]
        records.append(
            {"item_id": record["asin"], "title": record["title"], "brand": record.get("brand"),
             "categories": record["categories"], "price": record.get("price")}
        )
    asin = {old: meta[old]["asin"] for old in used}
    sequences = Sequences([line[0] for line in lines], [[asin[i] for i in line[1:]] for line in lines])
    return Dataset(name="beauty_small", items=ItemTable(records), sequences=sequences)
