"""The index artifact: layout, atomic writes, checksums, versions, golden file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import semid
from semid.errors import ArtifactError, ParameterError

GOLDEN = Path(__file__).parent / "golden" / "collaborative_v1"


@pytest.fixture
def fitted(all_beauty, all_beauty_train):
    return semid.make("collaborative", n_clusters=4, max_group_size=30).fit(all_beauty.items, all_beauty_train)


def test_layout_and_metadata(fitted, tmp_path):
    path = fitted.save(tmp_path / "idx")
    assert sorted(p.name for p in path.iterdir()) == ["codes.npy", "item_ids.txt", "labels.json", "tokenizer.json"]
    meta = json.loads((path / "tokenizer.json").read_text())
    assert meta["format"] == "semid-index" and meta["format_version"] == 1
    assert meta["scheme"] == "collaborative" and meta["params"]["n_clusters"] == 4
    assert meta["vocab"]["token_format"] == "<{prefix}_{index}>"
    assert meta["collisions"]["resolved"] == fitted.collisions_resolved_
    assert set(meta["files"]) == {"codes.npy", "item_ids.txt", "labels.json"}
    assert (path / "tokenizer.json").read_text().endswith("}\n")
    codes = np.load(path / "codes.npy", allow_pickle=False)
    assert codes.dtype == np.int32 and codes.shape[0] == len(fitted)


def test_existing_output_needs_overwrite(fitted, tmp_path):
    path = fitted.save(tmp_path / "idx")
    before = (path / "codes.npy").read_bytes()
    with pytest.raises(ArtifactError, match="--overwrite"):
        fitted.save(path)
    assert (path / "codes.npy").read_bytes() == before
    fitted.save(path, overwrite=True)
    assert semid.load(path).fingerprint == fitted.fingerprint


def test_failed_write_leaves_nothing(fitted, tmp_path, monkeypatch):
    import semid.artifact as artifact

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(artifact, "write_json", boom)
    with pytest.raises(RuntimeError):
        fitted.save(tmp_path / "idx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("victim", ["codes.npy", "item_ids.txt", "labels.json"])
def test_corrupted_file_is_detected(fitted, tmp_path, victim):
    path = fitted.save(tmp_path / "idx")
    data = bytearray((path / victim).read_bytes())
    data[-2] ^= 0xFF
    (path / victim).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{victim} is corrupted"):
        semid.load(path)


def test_newer_version_and_foreign_directories(fitted, tmp_path):
    path = fitted.save(tmp_path / "idx")
    meta_path = path / "tokenizer.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="newer than this semid supports"):
        semid.load(path)
    meta_path.write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupted"):
        semid.load(path)
    with pytest.raises(ArtifactError, match="not found"):
        semid.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="tokenizer.json is missing"):
        semid.load(tmp_path / "empty")
    (path / "codes.npy").unlink()
    meta["format_version"] = 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="missing"):
        semid.load(path)


def test_golden_artifact_keeps_loading(all_beauty):
    """An index written by semid 0.1.0 must load and decode identically forever."""
    tok = semid.load(GOLDEN)
    expected = json.loads((GOLDEN.parent / "collaborative_v1.expected.json").read_text())
    assert tok.fingerprint == expected["fingerprint"]
    for item, text in expected["tokens"].items():
        assert tok.render(item) == text and tok.decode(text) == item


def test_load_as_wrong_class(fitted, tmp_path):
    from semid.schemes.random_ids import RandomTokenizer

    path = fitted.save(tmp_path / "idx")
    with pytest.raises(ParameterError, match="holds a 'collaborative' index"):
        RandomTokenizer.load(path)


def test_unknown_scheme_in_artifact(fitted, tmp_path):
    path = fitted.save(tmp_path / "idx")
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    meta = json.loads((copy / "tokenizer.json").read_text())
    meta["scheme"] = "no-such-scheme"
    (copy / "tokenizer.json").write_text(json.dumps(meta))
    with pytest.raises(ParameterError, match="unknown scheme 'no-such-scheme'"):
        semid.load(copy)


def test_an_edited_item_count_is_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "idx")
    meta = json.loads((path / "tokenizer.json").read_text())
    meta["n_items"] += 1
    (path / "tokenizer.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="'n_items' is .* item_ids.txt lists"):
        semid.load(path)
