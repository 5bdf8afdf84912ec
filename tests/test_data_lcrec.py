"""The LC-Rec / LETTER importer (NAME.inter.json + NAME.item.json), on synthetic files."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from semid.data import load_dataset, save_dataset
from semid.data.importers import import_dataset
from semid.errors import DataError

INTER = {"0": [0, 1, 2], "1": [2, 0], "2": ["3"]}
ITEMS = {
    "0": {"title": "Guitar Strings.", "description": ["Bright", "tone"], "brand": "Ernie Ball",
          "categories": "Musical Instruments,Instrument Accessories,Guitar & Bass Accessories"},
    "1": {"title": "Capo &amp; Tuner", "description": "", "brand": "", "categories": ["Musical Instruments", "Capos"]},
    "2": {"title": "Drum Sticks", "categories": ""},
    "3": {"title": "Pick"},
}


def write_lcrec(root: Path, inter, items, *, name: str = "Instruments", gz: bool = False, raw_inter: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    files = {
        f"{name}.inter.json{suffix}": raw_inter if raw_inter is not None else json.dumps(inter, indent=4),
        f"{name}.item.json{suffix}": json.dumps(items, indent=4),
    }
    for filename, text in files.items():
        if gz:
            with gzip.open(root / filename, "wt", encoding="utf-8") as handle:
                handle.write(text)
        else:
            (root / filename).write_text(text, encoding="utf-8")
    return root


def test_imports_ids_text_and_category_paths(tmp_path):
    data = import_dataset("lcrec", write_lcrec(tmp_path / "src", INTER, ITEMS))
    assert data.name == "Instruments" and data.id_map is None
    assert data.sequences.user_ids == ["0", "1", "2"]
    assert data.sequences.items == [["0", "1", "2"], ["2", "0"], ["3"]]
    assert data.items.item_ids == ["0", "1", "2", "3"]
    assert data.items["0"]["categories"] == ["Musical Instruments", "Instrument Accessories", "Guitar & Bass Accessories"]
    assert data.items["0"]["description"] == "Bright tone"
    assert data.items["1"] == {"item_id": "1", "title": "Capo & Tuner", "categories": ["Musical Instruments", "Capos"]}
    assert "categories" not in data.items["2"]
    assert data.source["remap"] == "none"


def test_random_remap_and_asin_remap(tmp_path):
    src = write_lcrec(tmp_path / "src", INTER, ITEMS)
    shuffled = import_dataset("lcrec", src, remap="random", seed=3)
    assert sorted(shuffled.id_map.values(), key=int) == ["0", "1", "2", "3"]
    assert shuffled.items[shuffled.id_map["3"]]["title"] == "Pick"
    with pytest.raises(DataError, match=r"file not found: .*Instruments.item2id"):
        import_dataset("lcrec", src, remap="asin")
    (src / "Instruments.item2id").write_text("B00A\t0\nB00C\t1\nB00B\t2\nB00D\t3\n")
    by_asin = import_dataset("lcrec", src, remap="asin")
    assert by_asin.sequences.items[0] == ["B00A", "B00C", "B00B"]
    assert by_asin.items.item_ids == ["B00A", "B00B", "B00C", "B00D"]


def test_gz_inputs(tmp_path):
    data = import_dataset("lcrec", write_lcrec(tmp_path / "src", INTER, ITEMS, gz=True))
    assert data.sequences.n_interactions == 6


def test_malformed_json_names_file_and_line(tmp_path):
    src = write_lcrec(tmp_path / "src", None, ITEMS, raw_inter='{\n  "0": [0, 1],\n  "1": [2,, 0]\n}\n')
    with pytest.raises(DataError, match=r"Instruments.inter.json:3: malformed JSON"):
        import_dataset("lcrec", src)


def test_duplicate_item_key_is_an_error(tmp_path):
    src = write_lcrec(tmp_path / "src", INTER, ITEMS)
    (src / "Instruments.item.json").write_text('{\n"0": {"title": "a"},\n"1": {"title": "b"},\n"0": {"title": "c"}\n}\n')
    with pytest.raises(DataError, match=r"Instruments.item.json:4: duplicate key '0' in item features"):
        import_dataset("lcrec", src)


def test_empty_history_and_bad_item_value(tmp_path):
    with pytest.raises(DataError, match=r"user '1': empty item list"):
        import_dataset("lcrec", write_lcrec(tmp_path / "a", {"0": [0], "1": []}, ITEMS))
    with pytest.raises(DataError, match=r"user '0': field 'items' holds None; expected an item id"):
        import_dataset("lcrec", write_lcrec(tmp_path / "b", {"0": [0, None]}, ITEMS))


def test_unknown_item_is_kept_without_text(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        data = import_dataset("lcrec", write_lcrec(tmp_path / "src", {"0": [0, 9]}, ITEMS))
    assert data.items["9"] == {"item_id": "9"}
    assert "1 item(s) in the interactions are missing from Instruments.item.json" in caplog.text


def test_missing_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no interaction file \(NAME.inter.json\) found"):
        import_dataset("lcrec", tmp_path / "empty")
    src = write_lcrec(tmp_path / "src", INTER, ITEMS)
    (src / "Instruments.item.json").unlink()
    with pytest.raises(DataError, match=r"file not found: .*Instruments.item.json"):
        import_dataset("lcrec", src)


def test_round_trip(tmp_path):
    data = import_dataset("lcrec", write_lcrec(tmp_path / "src", INTER, ITEMS), remap="random", seed=0)
    loaded = load_dataset(save_dataset(data, tmp_path / "out"))
    assert loaded.items.records == data.items.records
    assert loaded.sequences.items == data.sequences.items and loaded.id_map == data.id_map
