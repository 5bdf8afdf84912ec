"""The RecBole atomic-file importer: synthetic files, and the real Beauty ``.item`` file
(``item_description.csv.gz``, tab separated) with a small synthetic ``.inter``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from semid.data import load_dataset, save_dataset
from semid.data.importers import import_dataset
from semid.errors import DataError
from _paths import SHARED_DATA

REAL_ITEM = SHARED_DATA / "amazon_beauty_2014/item_description.csv.gz"

INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "u1\ti2\t5\t300\n"
    "u2\ti1\t4\t100\n"
    "u1\ti1\t3\t100\n"
    "u1\ti3\t4\t100\n"
)
ITEM = (
    "item_id:token\ttitle:token_seq\tcategories:token_seq\tbrand:token\tprice:float\tclass:token_seq\n"
    "i1\tRose &amp; Oud\t'Beauty', 'Fragrance', \"Women's\"\tAcme\t12.5\tx\n"
    "i2\t\"Tab\tTitle\"\tFood, Coffee\t\t\t\n"
    "i3\tPlain\tAction Comedy\tB\t7\t\n"
)


def write_recbole(root: Path, inter: str = INTER, item: str | None = ITEM, name: str = "shop") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.inter").write_text(inter, encoding="utf-8")
    if item is not None:
        (root / f"{name}.item").write_text(item, encoding="utf-8")
    return root


def test_sequences_by_timestamp_with_ratings(tmp_path):
    data = import_dataset("recbole", write_recbole(tmp_path / "src"))
    assert data.name == "shop" and data.sequences.user_ids == ["u1", "u2"]
    assert data.sequences.items[0] == ["i1", "i3", "i2"]  # 100 (file order), 100, 300
    assert data.sequences.timestamps[0] == [100.0, 100.0, 300.0]
    assert data.sequences.ratings[0] == [3.0, 4.0, 5.0]


def test_file_order_without_timestamps(tmp_path):
    inter = "user_id:token\titem_id:token\nu1\ti2\nu1\ti1\n"
    data = import_dataset("recbole", write_recbole(tmp_path / "src", inter))
    assert data.sequences.items == [["i2", "i1"]]
    assert data.sequences.timestamps == [None] and data.sequences.ratings == [None]


def test_item_fields_follow_header_types(tmp_path):
    data = import_dataset("recbole", write_recbole(tmp_path / "src"))
    i1, i2, i3 = (data.items[i] for i in ("i1", "i2", "i3"))
    assert i1["title"] == "Rose & Oud" and i1["brand"] == "Acme" and i1["price"] == 12.5
    assert i1["categories"] == ["Beauty", "Fragrance", "Women's"]  # quoted list body
    assert i2 == {"item_id": "i2", "title": "Tab Title", "categories": ["Food", "Coffee"]}
    assert i3["categories"] == ["Action", "Comedy"] and i3["price"] == 7.0  # RecBole's space separator
    assert i1["class"] == ["x"]  # alias not renamed: the file has a real 'categories' column


def test_bad_header_bad_float_wrong_field_count(tmp_path):
    with pytest.raises(DataError, match=r"shop.inter:1: header column 'item_id:int' is not 'name:type'"):
        import_dataset("recbole", write_recbole(tmp_path / "a", "user_id:token\titem_id:int\nu\ti\n"))
    with pytest.raises(DataError, match=r"shop.inter:1: header lacks column 'user_id'"):
        import_dataset("recbole", write_recbole(tmp_path / "b", "session_id:token\titem_id:token\nu\ti\n"))
    bad_float = INTER + "u3\ti1\t4\tyesterday\n"
    with pytest.raises(DataError, match=r"shop.inter:6: field 'timestamp' must be a number, got 'yesterday'"):
        import_dataset("recbole", write_recbole(tmp_path / "c", bad_float))
    with pytest.raises(DataError, match=r"shop.inter:3: expected 4 tab-separated fields .* got 3"):
        import_dataset("recbole", write_recbole(tmp_path / "d", INTER[:INTER.index("u2")] + "u2\ti1\t4\n"))
    with pytest.raises(DataError, match=r"shop.item:3: field 'price' must be a number, got 'cheap'"):
        import_dataset("recbole", write_recbole(tmp_path / "e", item=ITEM.replace("\t\t\t\n", "\t\tcheap\t\n")))


def test_duplicate_item_and_unknown_item(tmp_path, caplog):
    with pytest.raises(DataError, match=r"shop.item:5: duplicate item_id 'i1' \(first on line 2\)"):
        import_dataset("recbole", write_recbole(tmp_path / "dup", item=ITEM + "i1\tx\ty\tz\t1\t\n"))
    with caplog.at_level(logging.WARNING):
        data = import_dataset("recbole", write_recbole(tmp_path / "unk", INTER + "u2\ti9\t1\t500\n"))
    assert data.items["i9"] == {"item_id": "i9"}
    assert "1 item(s) in the interactions are missing from shop.item" in caplog.text


def test_missing_item_file_keeps_items_without_text(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        data = import_dataset("recbole", write_recbole(tmp_path / "src", item=None))
    # In id order: first-use order would leak time order into the row order.
    assert data.items.records == [{"item_id": "i1"}, {"item_id": "i2"}, {"item_id": "i3"}]
    assert "no shop.item; items will have no text" in caplog.text


def test_round_trip(tmp_path):
    data = import_dataset("recbole", write_recbole(tmp_path / "src"))
    loaded = load_dataset(save_dataset(data, tmp_path / "out"))
    assert loaded.items.records == data.items.records
    assert loaded.sequences.items == data.sequences.items
    assert loaded.sequences.timestamps == data.sequences.timestamps
    assert loaded.sequences.ratings == data.sequences.ratings


@pytest.mark.skipif(not REAL_ITEM.exists(), reason=f"real RecBole item file not present at {REAL_ITEM}")
def test_real_beauty_item_file_with_synthetic_inter(tmp_path):
    src = tmp_path / "beauty"
    src.mkdir()
    os.symlink(REAL_ITEM, src / "beauty.item.gz")  # gz read transparently
    (src / "beauty.inter").write_text(
        "user_id:token\titem_id:token\ttimestamp:float\nA\t1\t1\nA\t378\t2\nB\t3\t1\nB\t1\t5\n"
    )
    data = import_dataset("recbole", src)
    assert len(data.items) == 12101
    wawo = data.items["1"]
    assert wawo["title"].startswith("WAWO 15 Color") and wawo["brand"] == "COKA"
    assert wawo["categories"] == ["Beauty", "Makeup", "Face", "Concealers & Neutralizers"]
    assert wawo["price"] == 5.04 and wawo["sales_rank"] == 10486.0
    assert data.items["3"]["categories"] == ["Beauty", "Fragrance", "Women's", "Eau de Parfum"]
    assert data.items["378"]["title"] == "TheraNeem Cream - Original Organix South 2 oz Cream Vanilla"
    assert data.sequences.items == [["1", "378"], ["3", "1"]]


def test_aliases_renamed_when_canonical_column_is_absent(tmp_path):
    item = (
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\temb:float_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\t0.5 1\n"
    )
    data = import_dataset("recbole", write_recbole(tmp_path / "ml", "user_id:token\titem_id:token\n7\t1\n", item))
    assert data.items["1"] == {
        "item_id": "1", "title": "Toy Story", "release_year": "1995",
        "categories": ["Animation", "Children's", "Comedy"], "emb": [0.5, 1.0],
    }


def test_unreadable_row_is_a_data_error(tmp_path):
    inter = "user_id:token\titem_id:token\nu1\ti1\nu2\t" + "x" * 200_000 + "\n"  # over csv's field limit
    with pytest.raises(DataError, match=r"shop.inter:3: unreadable row"):
        import_dataset("recbole", write_recbole(tmp_path / "src", inter))
