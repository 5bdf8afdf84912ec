"""The P5 / S3-Rec importer: synthetic layouts for errors, the real Beauty files for counts."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from semid.data import load_dataset, save_dataset
from semid.data.importers import IMPORTERS, import_dataset
from semid.data.importers.p5 import import_p5
from semid.errors import DataError, ParameterError
from _paths import SHARED_DATA

BEAUTY = SHARED_DATA / "amazon_beauty_2014"

ITEMS = [
    {"item_id": 1, "asin": "B0002", "title": "Red &amp; Blue Polish", "brand": "OPI",
     "categories": ["Beauty", "Makeup"], "price": 3.5, "sales_rank": 10.0},
    {"item_id": 2, "asin": "B0001", "title": "Shampoo", "categories": ["Beauty", "Hair"], "price": None},
    {"item_id": 3, "asin": "A0003", "title": "Cream"},
]


def write_p5(root: Path, lines: list[str], items: list[dict] | None = ITEMS, *,
             name: str = "sequential_data.txt", gz: bool = False, datamaps: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)

    def put(filename: str, text: str) -> None:
        if gz:
            with gzip.open(root / (filename + ".gz"), "wt", encoding="utf-8") as handle:
                handle.write(text)
        else:
            (root / filename).write_text(text, encoding="utf-8")

    put(name, "".join(line + "\n" for line in lines))
    if items is not None:
        put("items.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    if datamaps is not None:
        put("datamaps.json", json.dumps(datamaps))
    return root


def test_p5_is_registered():
    assert IMPORTERS["p5"] is import_p5


def test_asin_remap_replaces_time_ordered_ids(tmp_path):
    src = write_p5(tmp_path / "src", ["1 1 2 3", "2 3 1"])
    data = import_p5(src)
    assert data.sequences.user_ids == ["1", "2"]
    assert data.sequences.items == [["B0002", "B0001", "A0003"], ["A0003", "B0002"]]
    # Row order follows the ASIN, not the leaky first-appearance id.
    assert data.items.item_ids == ["A0003", "B0001", "B0002"]
    assert data.id_map == {"1": "B0002", "2": "B0001", "3": "A0003"}
    first = data.items["B0002"]
    assert first["title"] == "Red & Blue Polish"  # HTML entities unescaped
    assert first["categories"] == ["Beauty", "Makeup"] and first["brand"] == "OPI"
    assert first["price"] == 3.5 and first["sales_rank"] == 10.0
    assert "price" not in data.items["B0001"]  # null price stays absent
    assert all(t is None for t in data.sequences.timestamps)
    assert data.source["remap"] == "asin"


def test_random_remap_is_a_seeded_permutation(tmp_path):
    src = write_p5(tmp_path / "src", ["1 1 2 3", "2 3 1"])
    first = import_p5(src, remap="random", seed=7)
    again = import_p5(src, remap="random", seed=7)
    other = import_p5(src, remap="random", seed=8)
    assert first.id_map == again.id_map
    assert sorted(first.id_map.values(), key=int) == ["0", "1", "2"]
    assert first.items.item_ids == ["0", "1", "2"]
    assert {first.id_map[o] for o in ("1", "2", "3")} == {"0", "1", "2"}
    assert first.items[first.id_map["1"]]["asin"] == "B0002"  # text follows the item
    seeds_differ = [other.id_map != first.id_map] + [
        import_p5(src, remap="random", seed=s).id_map != first.id_map for s in range(9, 15)
    ]
    assert any(seeds_differ)


def test_remap_none_keeps_ids_and_no_id_map(tmp_path):
    data = import_p5(write_p5(tmp_path / "src", ["1 1 2 3"]), remap="none")
    assert data.sequences.items == [["1", "2", "3"]] and data.id_map is None


def test_unknown_remap_mode(tmp_path):
    with pytest.raises(ParameterError, match="remap must be one of asin, random, none; got 'time'"):
        import_p5(write_p5(tmp_path / "src", ["1 1"]), remap="time")


def test_datamaps_gives_user_ids_and_is_cross_checked(tmp_path):
    maps = {"id2user": {"1": "AUSER1", "2": "AUSER2"}, "id2item": {"1": "B0002", "2": "B0001", "3": "A0003"}}
    data = import_p5(write_p5(tmp_path / "ok", ["1 1 2", "2 3"], datamaps=maps))
    assert data.sequences.user_ids == ["AUSER1", "AUSER2"]
    bad = dict(maps, id2item={"1": "B9999", "2": "B0001", "3": "A0003"})
    with pytest.raises(DataError, match=r"item 1 has field 'asin' 'B0002' but datamaps.json id2item says 'B9999'"):
        import_p5(write_p5(tmp_path / "bad", ["1 1 2"], datamaps=bad))


def test_datamaps_alone_gives_asin_only_items(tmp_path):
    maps = {"id2user": {"1": "U"}, "id2item": {"1": "B0002", "2": "B0001"}}
    data = import_p5(write_p5(tmp_path / "src", ["1 2 1"], items=None, datamaps=maps))
    assert data.items.records == [{"item_id": "B0001", "asin": "B0001"}, {"item_id": "B0002", "asin": "B0002"}]


def test_gz_inputs_and_s3rec_file_name(tmp_path):
    src = write_p5(tmp_path / "src", ["1 1 2 3"], name="Beauty.txt", gz=True)
    (src / "Beauty_sample.txt").write_text("1 9 9 9\n")  # negative samples are ignored
    data = import_p5(src)
    assert data.name == "Beauty" and data.sequences.n_interactions == 3


def test_malformed_sequence_line(tmp_path):
    src = write_p5(tmp_path / "src", ["1 1 2", "2 3 x7"])
    with pytest.raises(DataError, match=r"sequential_data.txt:2: token 3 \(an item id\) must be an integer, got 'x7'"):
        import_p5(src)


def test_empty_history_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"sequential_data.txt:2: user '2' has no items"):
        import_p5(write_p5(tmp_path / "src", ["1 1 2", "2"]))


def test_duplicate_user_line(tmp_path):
    with pytest.raises(DataError, match=r":3: duplicate user '1' \(first on line 1\)"):
        import_p5(write_p5(tmp_path / "src", ["1 1 2", "2 3", "1 2"]))


def test_duplicate_item_in_metadata(tmp_path):
    items = ITEMS + [{"item_id": 2, "asin": "B0009"}]
    with pytest.raises(DataError, match=r"items.jsonl:4: duplicate item_id 2 \(first on line 2\)"):
        import_p5(write_p5(tmp_path / "src", ["1 1 2"], items=items))


def test_malformed_metadata_json_line(tmp_path):
    src = write_p5(tmp_path / "src", ["1 1 2"])
    (src / "items.jsonl").write_text(json.dumps(ITEMS[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"items.jsonl:2: malformed JSON"):
        import_p5(src)


def test_unknown_item_kept_without_text_unless_asin_needed(tmp_path, caplog):
    src = write_p5(tmp_path / "src", ["1 1 2 4"])
    with pytest.raises(DataError, match=r"sequential_data.txt: 1 item id\(s\) are not in items.jsonl \(e.g. '4'\), so they have no ASIN"):
        import_p5(src)
    with caplog.at_level(logging.WARNING):
        data = import_p5(src, remap="none")
    assert data.items["4"] == {"item_id": "4"}
    assert "1 item(s) in the interactions are missing from items.jsonl" in caplog.text


def test_missing_files(tmp_path):
    with pytest.raises(DataError, match="source directory not found"):
        import_p5(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="expected sequential_data.txt or exactly one other"):
        import_p5(tmp_path / "empty")
    no_meta = write_p5(tmp_path / "nometa", ["1 1 2"], items=None)
    with pytest.raises(DataError, match="no item metadata found"):
        import_p5(no_meta)


def test_round_trip_keeps_everything(tmp_path):
    data = import_p5(write_p5(tmp_path / "src", ["1 1 2 3", "2 3 1"]), remap="random", seed=1)
    loaded = load_dataset(save_dataset(data, tmp_path / "out"))
    assert loaded.items.records == data.items.records
    assert loaded.sequences.user_ids == data.sequences.user_ids
    assert loaded.sequences.items == data.sequences.items
    assert loaded.id_map == data.id_map and loaded.source == data.source and loaded.name == data.name


@pytest.mark.skipif(not BEAUTY.is_dir(), reason=f"real Beauty files not present at {BEAUTY}")
def test_real_beauty_counts_match_source_md():
    data = import_dataset("p5", BEAUTY)
    assert (len(data.sequences), len(data.items), data.sequences.n_interactions) == (22363, 12101, 198502)
    assert data.sequences.user_ids[0] == "A1YJEY40YUW4SE"  # datamaps id2user
    assert data.id_map["4"] == "7806397051"  # SOURCE.md example
    wawo = data.items["7806397051"]
    assert wawo["title"].startswith("WAWO 15 Color") and wawo["brand"] == "COKA"
    assert not any("&amp;" in (r.get("title") or "") for r in data.items.records)
    assert sum(1 for r in data.items.records if r.get("title")) == 12094


def test_import_dataset_rejects_unknown_format_and_options(tmp_path):
    with pytest.raises(ParameterError, match=r"unknown import format 'csv'; valid formats: amazon2023, lcrec, movielens, p5, recbole"):
        import_dataset("csv", tmp_path)
    with pytest.raises(ParameterError, match=r"format 'movielens' does not take option\(s\) remap; it takes: seed, name"):
        import_dataset("movielens", tmp_path, remap="asin")
