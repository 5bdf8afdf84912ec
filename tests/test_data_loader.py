"""Bad input to the canonical loader (semid/data/dataset.py) and the save/load round trip."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from semid.data import DATASET_FORMAT_VERSION, Dataset, ItemTable, Sequences, load_dataset, save_dataset
from semid.errors import ArtifactError, DataError, UnknownItemError

ITEMS = [{"item_id": "a", "title": "A", "categories": ["x", "y"], "price": 1.5}, {"item_id": "b"}, {"item_id": "c"}]
SEQS = [{"user_id": "u1", "items": ["a", "b", "c"], "timestamps": [1, 2, 3], "ratings": [5, 4, 3]},
        {"user_id": "u2", "items": ["c"]}]


def write_dataset(root: Path, items=ITEMS, seqs=SEQS, *, meta: dict | None = None, gz: bool = False) -> Path:
    root.mkdir(parents=True)
    meta = meta if meta is not None else {"format": "semid-dataset", "format_version": 1, "name": "t"}
    (root / "dataset.json").write_text(json.dumps(meta))
    for name, rows in (("items.jsonl", items), ("sequences.jsonl", seqs)):
        text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
        if gz:
            with gzip.open(root / (name + ".gz"), "wt", encoding="utf-8") as handle:
                handle.write(text)
        else:
            (root / name).write_text(text)
    return root


def test_loads_and_gz_is_transparent(tmp_path):
    plain = load_dataset(write_dataset(tmp_path / "plain"))
    packed = load_dataset(write_dataset(tmp_path / "packed", gz=True))
    for data in (plain, packed):
        assert data.items.item_ids == ["a", "b", "c"]
        assert data.sequences.items == [["a", "b", "c"], ["c"]]
        assert data.sequences.timestamps == [[1.0, 2.0, 3.0], None]


def test_newer_format_version_is_an_artifact_error(tmp_path):
    meta = {"format": "semid-dataset", "format_version": DATASET_FORMAT_VERSION + 1}
    with pytest.raises(ArtifactError, match=r"dataset.json: dataset format_version 2 is newer than this semid supports \(1\)"):
        load_dataset(write_dataset(tmp_path / "d", meta=meta))


def test_wrong_format_and_missing_files(tmp_path):
    with pytest.raises(DataError, match=r"field 'format' is 'other', expected 'semid-dataset'"):
        load_dataset(write_dataset(tmp_path / "a", meta={"format": "other", "format_version": 1}))
    with pytest.raises(DataError, match="dataset directory not found"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="dataset.json is missing"):
        load_dataset(tmp_path / "empty")
    root = write_dataset(tmp_path / "noseq")
    (root / "sequences.jsonl").unlink()
    with pytest.raises(DataError, match=r"file not found: .*sequences.jsonl \(also looked for sequences.jsonl.gz\)"):
        load_dataset(root)


def test_malformed_json_line_names_file_and_line(tmp_path):
    root = write_dataset(tmp_path / "d", items=ITEMS + ['{"item_id": "d", '])
    with pytest.raises(DataError, match=r"items.jsonl:4: malformed JSON"):
        load_dataset(root)
    root = write_dataset(tmp_path / "e", seqs=SEQS + ["[1, 2]"])
    with pytest.raises(DataError, match=r"sequences.jsonl:3: expected a JSON object, got list"):
        load_dataset(root)


def test_duplicate_item_and_user(tmp_path):
    with pytest.raises(DataError, match=r"items.jsonl:3: duplicate item_id 'a' \(first on line 1\)"):
        load_dataset(write_dataset(tmp_path / "i", items=[ITEMS[0], ITEMS[1], {"item_id": "a"}, ITEMS[2]]))
    with pytest.raises(DataError, match=r"sequences.jsonl:2: duplicate user_id 'u1' \(first on line 1\)"):
        load_dataset(write_dataset(tmp_path / "u", seqs=[SEQS[0], dict(SEQS[1], user_id="u1")]))


def test_unknown_item_and_empty_history(tmp_path):
    with pytest.raises(UnknownItemError, match=r"sequences.jsonl:2: field 'items' of user 'u2' names unknown item 'zz'"):
        load_dataset(write_dataset(tmp_path / "i", seqs=[SEQS[0], {"user_id": "u2", "items": ["zz"]}]))
    with pytest.raises(DataError, match=r"sequences.jsonl:2: user 'u2' has an empty 'items' list"):
        load_dataset(write_dataset(tmp_path / "e", seqs=[SEQS[0], {"user_id": "u2", "items": []}]))


def test_misaligned_timestamps(tmp_path):
    bad = [dict(SEQS[0], timestamps=[1, 2])]
    with pytest.raises(DataError, match=r"sequences.jsonl:1: field 'timestamps' must be a list of 3 numbers"):
        load_dataset(write_dataset(tmp_path / "d", seqs=bad))


def test_round_trip_keeps_everything(tmp_path):
    data = Dataset(
        name="rt",
        items=ItemTable([{"item_id": "b", "title": "Bé", "categories": ["x"], "price": 2.0, "extra": {"k": 1}},
                         {"item_id": "a"}]),
        sequences=Sequences(["u1", "u2"], [["a", "b"], ["b"]], [[1.0, 2.0], None], [None, [4.0]]),
        source={"format": "test", "files": ["x"]},
        id_map={"1": "a", "2": "b"},
    )
    loaded = load_dataset(save_dataset(data, tmp_path / "out"))
    assert loaded.name == "rt" and loaded.source == data.source and loaded.id_map == data.id_map
    assert loaded.items.records == data.items.records
    assert loaded.sequences == Sequences(["u1", "u2"], [["a", "b"], ["b"]], [[1.0, 2.0], None], [None, [4.0]])
    meta = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert meta["counts"] == {"items": 2, "users": 2, "interactions": 3}


def test_save_refuses_existing_and_leaves_nothing_half_written(tmp_path):
    data = load_dataset(write_dataset(tmp_path / "src"))
    out = save_dataset(data, tmp_path / "out")
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(ArtifactError, match="already exists; pass --overwrite"):
        save_dataset(data, out)
    broken = Dataset("x", data.items, Sequences(["u"], [["missing"]]))
    with pytest.raises(UnknownItemError):
        save_dataset(broken, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no staging left behind


def test_failure_while_writing_leaves_no_partial_directory(tmp_path):
    # A value json cannot encode fails after items.jsonl was opened in the staging dir.
    data = Dataset("x", ItemTable([{"item_id": "a", "bad": {1, 2}}]), Sequences(["u"], [["a"]]))
    with pytest.raises(TypeError):
        save_dataset(data, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
