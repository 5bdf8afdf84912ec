"""Bridges to GRID and RecBole3.0: round trips, files written by their own rules, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import semid
from semid.cli.main import cli
from semid.errors import DataError

DATA = "builtin:all_beauty_2023"


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset(DATA)


@pytest.fixture(scope="module")
def index(data, tmp_path_factory):
    x = np.random.default_rng(0).normal(size=(len(data.items), 16)).astype(np.float32)
    tok = semid.make("rqkmeans", n_levels=2, codebook_size=8, n_iter=5).fit(data.items, embeddings=x)
    path = tmp_path_factory.mktemp("idx") / "index"
    tok.save(path)
    return path


@pytest.mark.parametrize("fmt, name", [("grid", "sids.pt"), ("recbole3", "item_sids.json"),
                                       ("recbole3-raw", "item_sids.json"), ("lcrec", "index.json")])
def test_round_trip_returns_the_identical_codes(index, tmp_path, fmt, name):
    out = tmp_path / name
    assert CliRunner().invoke(cli, ["export", str(index), "--format", fmt, str(out)]).exit_code == 0
    result = CliRunner().invoke(cli, ["import-index", str(out), "--format", fmt, "--data", DATA, "--out",
                                      str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    original, again = semid.load(index), semid.load(tmp_path / "again")
    assert again.encode_batch(original.item_ids) == original.encode_batch(original.item_ids)


def test_a_grid_tensor_written_by_grids_rules_is_read_with_its_collision_row_dropped(data, tmp_path):
    n = len(data.items)
    codes = np.stack([np.arange(n) % 11, np.arange(n) // 11, np.zeros(n, dtype=int)], 1)  # unique codes
    codes[1] = codes[0]  # one collision: GRID numbers its group 1, 2 and leaves every other item 0
    dedup = np.zeros(n, dtype=np.int64)
    dedup[[0, 1]] = [1, 2]
    torch.save(torch.from_numpy(np.concatenate([codes, dedup[:, None]], 1).T.copy()), tmp_path / "t.pt")
    tok = semid.make("imported", path=str(tmp_path / "t.pt"), format="grid").fit(data.items)
    assert tok.codes.shape[1] == 4 and tok.collisions_resolved_ == 1  # semid's own collision level instead
    assert tuple(tok.codes[5][:3]) == tuple(codes[5])


def recbole_extend(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    """RecBole's RQ-VAE "extend" rule: shift level l by l * K, then add a level numbering each code's items 1..k."""
    seen: dict[tuple, int] = {}
    counter = np.array([seen.__setitem__(t, seen.get(t, 0) + 1) or seen[t] for t in map(tuple, codes.tolist())])
    full = np.concatenate([codes, counter[:, None]], 1)
    return full + np.arange(full.shape[1]) * codebook_size


def test_a_recbole_offset_file_is_mapped_back_to_levels_despite_unused_codes(data, tmp_path):
    n = len(data.items)
    # codebook size 16 of which only 7, 9 and 12 values are used: offsets are 0, 16, 32 (+ 48 for the counter)
    codes = np.stack([np.arange(n) % 7, np.arange(n) // 7 % 9, np.arange(n) // 63 % 12], 1)
    (tmp_path / "item_sids.json").write_text(json.dumps({str(i): row.tolist()
                                                         for i, row in enumerate(recbole_extend(codes, 16))}))
    tok = semid.make("imported", path=str(tmp_path / "item_sids.json"), format="recbole3").fit(data.items)
    assert tok.codes.shape[1] == 4
    np.testing.assert_array_equal(tok.codes[:, :3], codes)
    assert tok.codes[:, 3].min() == 1  # RecBole's counter starts at 1


def test_given_level_sizes_are_used_and_checked(data, tmp_path):
    n = len(data.items)
    codes = np.stack([np.arange(n) % 5 + 1, np.arange(n) // 5 + 1], 1)  # unique; code 0 unused at both levels
    path = tmp_path / "item_sids.json"
    path.write_text(json.dumps({str(i): row.tolist() for i, row in enumerate(codes + [0, 10])}))
    tok = semid.make("imported", path=str(path), format="recbole3", level_sizes="10").fit(data.items)
    np.testing.assert_array_equal(tok.codes, codes)
    with pytest.raises(DataError, match=r"item 4: code 5 at level 0 is outside \[0, 5\)"):
        semid.make("imported", path=str(path), format="recbole3", level_sizes="5,20").fit(data.items)


@pytest.mark.parametrize("content, fmt, message", [
    ({"0": [1, 2]}, "recbole3-raw", "internal item id 1 has no code"),
    ("ITEMS", "recbole3-raw", "expected a list of non-negative integers"),
    ("RAGGED", "recbole3-raw", "item 1 has 1 codes, item 0 has 2"),
])
def test_bad_recbole_files_name_the_item(data, tmp_path, content, fmt, message):
    n = len(data.items)
    if content == "ITEMS":
        content = {str(i): [1, 2] for i in range(n)}
        content["3"] = ["a", 2]
    elif content == "RAGGED":
        content = {str(i): [1, 2] for i in range(n)}
        content["1"] = [1]
    path = tmp_path / "f.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DataError, match=message):
        semid.make("imported", path=str(path), format=fmt).fit(data.items)


def test_a_grid_tensor_in_the_wrong_orientation_is_explained(data, tmp_path):
    torch.save(torch.zeros(len(data.items), 3, dtype=torch.long), tmp_path / "t.pt")
    with pytest.raises(DataError, match="items x levels; GRID stores levels x items"):
        semid.make("imported", path=str(tmp_path / "t.pt"), format="grid").fit(data.items)
