"""The Amazon Reviews 2023 importer: the real All_Beauty split, and synthetic bad inputs."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from semid.data.importers import import_dataset
from semid.errors import DataError
from _paths import SHARED_DATA

ALL_BEAUTY = SHARED_DATA / "amazon_all_beauty_2023"

HEADER = "user_id,parent_asin,rating,timestamp,history\n"
SPLITS = {
    "train": HEADER + "U1,B2,5.0,2000,\nU1,B1,4.0,1000,\n",
    "valid": HEADER + "U1,B3,3.0,3000,B1 B2\n",
    "test": HEADER + "U1,B4,2.0,4000,B1 B2 B3\n",
}
META = [
    {"parent_asin": "B1", "title": "One &amp; Only", "store": "Acme", "categories": ["Beauty", "Hair"], "price": "$3.00"},
    {"parent_asin": "B2", "title": "Two", "details": {"Brand": "Zed"}},
    {"parent_asin": "B3", "title": "Three"},
]


def write_2023(root: Path, meta=META, splits=SPLITS, *, gz: bool = False) -> Path:
    root.mkdir()
    files = {f"Shop.{name}.csv": text for name, text in splits.items()}
    files["meta_Shop.jsonl"] = "".join(json.dumps(m) + "\n" for m in meta)
    for name, text in files.items():
        if gz:
            with gzip.open(root / (name + ".gz"), "wt", encoding="utf-8") as handle:
                handle.write(text)
        else:
            (root / name).write_text(text)
    return root


def test_sequence_in_time_order_and_meta_fields(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        data = import_dataset("amazon2023", write_2023(tmp_path / "src", gz=True))
    assert data.name == "Shop" and data.sequences.items == [["B1", "B2", "B3", "B4"]]
    assert data.sequences.timestamps == [[1000.0, 2000.0, 3000.0, 4000.0]]
    assert data.items["B1"] == {"item_id": "B1", "title": "One & Only", "brand": "Acme",
                                "categories": ["Beauty", "Hair"], "price": 3.0}
    assert data.items["B2"]["brand"] == "Zed"
    assert data.items["B4"] == {"item_id": "B4"}  # no metadata: kept without text, with a warning
    assert "1 item(s) in the interactions are missing from meta_Shop.jsonl" in caplog.text


def test_duplicate_metadata_record(tmp_path):
    with pytest.raises(DataError, match=r"meta_Shop.jsonl:4: duplicate parent_asin 'B1'"):
        import_dataset("amazon2023", write_2023(tmp_path / "src", meta=META + [{"parent_asin": "B1"}]))


def test_malformed_split_row_and_meta_line(tmp_path):
    splits = dict(SPLITS, train=HEADER + "U1,B2,5.0,2000,\nU1,B1,four,1000,\n")
    with pytest.raises(DataError, match=r"Shop.train.csv:3: fields 'rating'/'timestamp' must be numbers, got 'four'"):
        import_dataset("amazon2023", write_2023(tmp_path / "a", splits=splits))
    root = write_2023(tmp_path / "b")
    (root / "meta_Shop.jsonl").write_text(json.dumps(META[0]) + "\n{\n")
    with pytest.raises(DataError, match=r"meta_Shop.jsonl:2: malformed JSON"):
        import_dataset("amazon2023", root)


def test_missing_split_file(tmp_path):
    root = write_2023(tmp_path / "src")
    (root / "Shop.valid.csv").unlink()
    with pytest.raises(DataError, match=r"no validation split \(\*.valid.csv\) found"):
        import_dataset("amazon2023", root)


@pytest.mark.skipif(not ALL_BEAUTY.is_dir(), reason=f"All_Beauty 2023 files not present at {ALL_BEAUTY}")
def test_real_all_beauty_counts_match_source_md():
    data = import_dataset("amazon2023", ALL_BEAUTY)
    assert (len(data.sequences), len(data.items), data.sequences.n_interactions) == (253, 356, 2535)
    coverage = data.items.coverage()
    assert coverage["title"] == 1.0
    assert round(coverage["brand"] * 356) == 282 and round(coverage["price"] * 356) == 57
