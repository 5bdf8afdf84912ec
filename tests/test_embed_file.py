"""The embedding file format: round trip, alignment, and every bad input."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from semid.embeddings import EMBEDDINGS_FORMAT, load_embeddings, read_embeddings, save_embeddings
from semid.errors import DataError


def _matrix(n=5, d=4):
    return np.arange(n * d, dtype=np.float32).reshape(n, d) / 10


def test_round_trip_keeps_ids_values_and_meta(tmp_path):
    path = save_embeddings(tmp_path / "e.npz", ["a", "b", "c", "d", "e"], _matrix(), {"model": "m", "fields": ["title"]})
    ids, matrix, meta = read_embeddings(path)
    assert ids == ["a", "b", "c", "d", "e"]
    np.testing.assert_array_equal(matrix, _matrix())
    assert matrix.dtype == np.float32
    assert meta["model"] == "m" and meta["fields"] == ["title"]
    assert meta["format"] == EMBEDDINGS_FORMAT and meta["dim"] == 4 and meta["n_items"] == 5
    assert "semid_version" in meta


def test_file_has_no_pickled_objects(tmp_path):
    path = save_embeddings(tmp_path / "e.npz", list("abcde"), _matrix())
    with np.load(path, allow_pickle=False) as data:
        assert data["item_ids"].dtype.kind == "U"
        assert json.loads(str(data["meta"]))["n_items"] == 5


def test_load_aligns_to_requested_order_and_subset(tmp_path):
    path = save_embeddings(tmp_path / "e.npz", list("abcde"), _matrix())
    out = load_embeddings(path, ["e", "a", "c"])
    np.testing.assert_array_equal(out, _matrix()[[4, 0, 2]])


def test_missing_items_are_counted_and_named(tmp_path):
    path = save_embeddings(tmp_path / "e.npz", list("abcde"), _matrix())
    with pytest.raises(DataError, match=r"2 of 3 items have no embedding \(first: 'x', 'y'\)"):
        load_embeddings(path, ["a", "x", "y"])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_rejected_on_save_and_load(tmp_path, bad):
    matrix = _matrix()
    matrix[3, 1] = bad
    with pytest.raises(DataError, match=r"row 3 \(item 'd'\)"):
        save_embeddings(tmp_path / "e.npz", list("abcde"), matrix)
    assert not (tmp_path / "e.npz").exists()
    # A file written by someone else with NaN inside.
    np.savez(tmp_path / "raw.npz", embeddings=matrix, item_ids=np.array(list("abcde")), meta=np.array("{}"))
    with pytest.raises(DataError, match="NaN or infinite"):
        load_embeddings(tmp_path / "raw.npz", ["a"])


def test_wrong_row_count(tmp_path):
    with pytest.raises(DataError, match="5 embedding rows for 4 item ids"):
        save_embeddings(tmp_path / "e.npz", list("abcd"), _matrix())
    np.savez(tmp_path / "raw.npz", embeddings=_matrix(), item_ids=np.array(list("abcd")), meta=np.array("{}"))
    with pytest.raises(DataError, match="5 embedding rows but 4 item ids"):
        load_embeddings(tmp_path / "raw.npz", ["a"])


def test_duplicate_ids(tmp_path):
    with pytest.raises(DataError, match="'b' appears more than once"):
        save_embeddings(tmp_path / "e.npz", ["a", "b", "b", "c", "d"], _matrix())


def test_unreadable_and_foreign_files(tmp_path):
    with pytest.raises(DataError, match="embedding file not found"):
        load_embeddings(tmp_path / "missing.npz", ["a"])
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(DataError, match="not a .npz embedding file"):
        load_embeddings(tmp_path / "text.npz", ["a"])
    np.savez(tmp_path / "other.npz", vectors=_matrix())
    with pytest.raises(DataError, match="array 'embeddings' is missing"):
        load_embeddings(tmp_path / "other.npz", ["a"])
    np.savez(tmp_path / "obj.npz", embeddings=_matrix(), item_ids=np.array(list("abcde"), dtype=object),
             meta=np.array("{}"))
    with pytest.raises(DataError, match="object array.*unicode"):
        load_embeddings(tmp_path / "obj.npz", ["a"])
    with zipfile.ZipFile(tmp_path / "broken.npz", "w") as z:
        z.writestr("embeddings.npy", b"garbage")
        z.writestr("item_ids.npy", b"garbage")
        z.writestr("meta.npy", b"garbage")
    with pytest.raises(DataError, match="unreadable embedding file"):
        load_embeddings(tmp_path / "broken.npz", ["a"])


def test_wrong_shapes_and_newer_version(tmp_path):
    np.savez(tmp_path / "flat.npz", embeddings=np.zeros(5, np.float32), item_ids=np.array(list("abcde")),
             meta=np.array("{}"))
    with pytest.raises(DataError, match="2-d float array"):
        load_embeddings(tmp_path / "flat.npz", ["a"])
    np.savez(tmp_path / "new.npz", embeddings=_matrix(), item_ids=np.array(list("abcde")),
             meta=np.array(json.dumps({"format_version": 99})))
    with pytest.raises(DataError, match="newer"):
        load_embeddings(tmp_path / "new.npz", ["a"])


def test_save_is_atomic_and_overwrites_cleanly(tmp_path):
    path = tmp_path / "e.npz"
    save_embeddings(path, list("abcde"), _matrix())
    save_embeddings(path, list("abcde"), _matrix() * 2)
    np.testing.assert_array_equal(load_embeddings(path, ["b"]), _matrix()[[1]] * 2)
    assert [p.name for p in tmp_path.iterdir()] == ["e.npz"]  # no staging files left
