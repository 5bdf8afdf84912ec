"""`semid` index commands through click's CliRunner: happy paths and bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from semid.cli.main import cli

DATA = "builtin:all_beauty_2023"


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def index(runner, tmp_path):
    out = tmp_path / "cid"
    result = runner.invoke(
        cli, ["build-index", "--scheme", "collaborative", "--data", DATA, "--out", str(out),
              "--set", "n_clusters=4", "--set", "max_group_size=30", "--seed", "3"],
    )
    assert result.exit_code == 0, result.output
    return out


def _error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1, result.output
    return lines[0]


def test_list_schemes(runner):
    result = runner.invoke(cli, ["list-schemes"])
    assert result.exit_code == 0
    names = result.output.split()
    assert {"random", "title", "independent", "sequential", "collaborative", "category"} <= set(names)
    assert "collaborative+independent" in names
    detailed = json.loads(runner.invoke(cli, ["list-schemes", "-l"]).output)
    assert detailed["collaborative"]["requires"] == ["sequences"]


def test_build_inspect_encode_decode(runner, index):
    summary = json.loads(runner.invoke(cli, ["inspect", str(index)]).output)
    assert summary["scheme"] == "collaborative" and summary["n_items"] == 356
    assert summary["params"]["seed"] == 3
    assert {"usage", "entropy_bits", "branching"} <= set(summary["levels"][0])
    encoded = runner.invoke(cli, ["encode", str(index), "B005AL5H9S"])
    assert encoded.exit_code == 0
    item, tokens = encoded.output.strip().split("\t")
    decoded = runner.invoke(cli, ["decode", str(index), tokens])
    assert decoded.output.strip().split("\t") == [tokens, item]


def test_export_and_import_round_trip(runner, index, tmp_path):
    out = tmp_path / "index.json"
    assert runner.invoke(cli, ["export", str(index), "--format", "lcrec", str(out)]).exit_code == 0
    data = json.loads(out.read_text())
    assert len(data) == 356 and all(t.startswith("<") for tokens in data.values() for t in tokens)
    imported = tmp_path / "imported"
    result = runner.invoke(cli, ["import-index", str(out), "--data", DATA, "--out", str(imported)])
    assert result.exit_code == 0, result.output
    item = next(iter(data))
    again = runner.invoke(cli, ["encode", str(imported), item]).output.strip().split("\t")[1]
    assert again == "".join(data[item])


def test_import_resolves_collisions(runner, tmp_path, all_beauty):
    ids = all_beauty.items.item_ids
    mapping = {item: ["<a_1>", f"<b_{i % 3}>"] for i, item in enumerate(ids)}
    path = tmp_path / "colliding.json"
    path.write_text(json.dumps(mapping))
    out = tmp_path / "imp"
    result = runner.invoke(cli, ["import-index", str(path), "--data", DATA, "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(runner.invoke(cli, ["inspect", str(out)]).output)
    assert summary["collisions"]["resolved"] == len(ids) - 3


def test_import_rejects_incomplete_or_malformed(runner, tmp_path, all_beauty):
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({all_beauty.items.item_ids[0]: ["<a_1>"]}))
    line = _error_line(runner.invoke(cli, ["import-index", str(path), "--data", DATA, "--out", str(tmp_path / "x")]))
    assert "355 dataset items have no code" in line
    path.write_text(json.dumps({i: ["a1"] for i in all_beauty.items.item_ids}))
    line = _error_line(runner.invoke(cli, ["import-index", str(path), "--data", DATA, "--out", str(tmp_path / "x")]))
    assert "is not of the form" in line and not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scheme", "nope"], "unknown scheme 'nope'; valid schemes are:"),
        (["--scheme", "random", "--set", "colour=red"], "unknown parameter 'colour'; valid parameters: base, seed"),
        (["--scheme", "random", "--set", "base=ten"], "parameter 'base' must be int, got 'ten'"),
        (["--scheme", "random", "--set", "base=1"], "parameter 'base' must be >= 2, got 1"),
        (["--scheme", "sequential", "--set", "order=backwards"], "must be one of"),
        (["--scheme", "random", "--set", "base"], "expected key=value"),
        (["--scheme", "category"], "scheme 'category' needs field 'categories' on every item, but 356 of 356"),
        (["--scheme", "collaborative+independent", "--set", "prefix.bogus=1"], "unknown parameter 'bogus'"),
    ],
)
def test_build_index_bad_input(runner, tmp_path, args, message):
    out = tmp_path / "idx"
    result = runner.invoke(cli, ["build-index", "--data", DATA, "--out", str(out), *args])
    assert message in _error_line(result)
    assert not out.exists()


def test_build_index_refuses_existing_output(runner, index):
    before = sorted(p.name for p in index.iterdir())
    result = runner.invoke(cli, ["build-index", "--scheme", "random", "--data", DATA, "--out", str(index)])
    assert "--overwrite" in _error_line(result)
    assert sorted(p.name for p in index.iterdir()) == before
    ok = runner.invoke(cli, ["build-index", "--scheme", "random", "--data", DATA, "--out", str(index), "--overwrite"])
    assert ok.exit_code == 0
    assert json.loads((index / "tokenizer.json").read_text())["scheme"] == "random"


def test_missing_dataset_and_index(runner, tmp_path):
    line = _error_line(runner.invoke(cli, ["build-index", "--scheme", "random", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]))
    assert "dataset directory not found" in line
    assert "index directory not found" in _error_line(runner.invoke(cli, ["inspect", str(tmp_path / "none")]))


def test_decode_unknown_and_malformed_codes(runner, index):
    assert "is not the code of any item" in _error_line(runner.invoke(cli, ["decode", str(index), "<a_3><b_3><c_3><d_3>"]))
    assert "cannot parse" in _error_line(runner.invoke(cli, ["decode", str(index), "<a_0>junk"]))
    assert "out of range" in _error_line(runner.invoke(cli, ["decode", str(index), "<a_999>"]))
    assert "not in this collaborative index" in _error_line(runner.invoke(cli, ["encode", str(index), "NO-SUCH-ITEM"]))


def test_corrupted_index_is_one_line_error(runner, index):
    (index / "codes.npy").write_bytes(b"garbage")
    assert "codes.npy is corrupted" in _error_line(runner.invoke(cli, ["inspect", str(index)]))


def test_hybrid_parameters_are_listed_as_set_takes_them(runner, tmp_path):
    described = json.loads(runner.invoke(cli, ["list-schemes", "-l"]).stdout)["collaborative+independent"]
    names = [p["name"] for p in described["params"]]
    assert "prefix.n_clusters" in names and "prefix" not in names and "suffix" not in names
    result = runner.invoke(cli, ["build-index", "--scheme", "collaborative+independent", "--data",
                                 "builtin:all_beauty_2023", "--out", str(tmp_path / "h"), "--set", "prefix.n_clusters=5"])
    assert result.exit_code == 0, result.output
