"""``semid data import`` and ``semid data stats`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from semid.cli import data_cmds
from semid.cli.main import cli
from semid.data import load_dataset
from semid.data.importers import IMPORTERS
from _paths import SHARED_DATA

ALL_BEAUTY = SHARED_DATA / "amazon_all_beauty_2023"


def write_p5(root: Path, lines: str = "1 1 2\n2 2 3 1\n") -> Path:
    root.mkdir()
    (root / "sequential_data.txt").write_text(lines)
    items = [{"item_id": i, "asin": f"B{i:04d}", "title": f"item {i}"} for i in (1, 2, 3)]
    (root / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    return root


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_format_choices_match_the_registry():
    assert data_cmds.FORMATS == tuple(sorted(IMPORTERS))


def test_import_then_stats(tmp_path):
    src, out = write_p5(tmp_path / "src"), tmp_path / "out"
    result = run("data", "import", "--format", "p5", str(src), str(out), "--name", "tiny")
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: 2 users, 3 items, 5 interactions" in result.output
    data = load_dataset(out)
    assert data.name == "tiny" and data.sequences.items[0] == ["B0001", "B0002"]
    assert (out / "id_map.tsv").read_text().splitlines()[0] == "1\tB0001"
    result = run("data", "stats", str(out))
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["users"] == 2 and stats["interactions"] == 5 and stats["sequence_length"]["max"] == 3


def test_remap_and_seed_are_passed(tmp_path):
    src = write_p5(tmp_path / "src")
    for seed in ("1", "2"):
        result = run("data", "import", "--format", "p5", str(src), str(tmp_path / seed), "--remap", "random", "--seed", seed)
        assert result.exit_code == 0, result.output
    maps = [load_dataset(tmp_path / s).id_map for s in ("1", "2")]
    assert all(sorted(m.values()) == ["0", "1", "2"] for m in maps)
    source = load_dataset(tmp_path / "1").source
    assert (source["format"], source["remap"], source["seed"]) == ("p5", "random", 1)


def test_remap_on_a_format_without_it_is_a_user_error(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "x.inter").write_text("user_id:token\titem_id:token\nu\ti\n")
    result = run("data", "import", "--format", "recbole", str(tmp_path / "r"), str(tmp_path / "out"), "--remap", "asin")
    assert result.exit_code == 1
    assert "format 'recbole' does not support --remap" in result.output
    assert not (tmp_path / "out").exists()


def test_existing_output_needs_overwrite(tmp_path):
    src, out = write_p5(tmp_path / "src"), tmp_path / "out"
    assert run("data", "import", "--format", "p5", str(src), str(out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = run("data", "import", "--format", "p5", str(src), str(out), "--remap", "none")
    assert result.exit_code == 1
    assert f"Error: {out} already exists; pass --overwrite to replace it" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    result = run("data", "import", "--format", "p5", str(src), str(out), "--remap", "none", "--overwrite")
    assert result.exit_code == 0, result.output
    assert load_dataset(out).id_map is None


def test_failed_import_leaves_nothing(tmp_path):
    src, out = write_p5(tmp_path / "src", "1 1 2\n2 2 x\n"), tmp_path / "out"
    result = run("data", "import", "--format", "p5", str(src), str(out))
    assert result.exit_code == 1
    assert "sequential_data.txt:2: token 3 (an item id) must be an integer, got 'x'" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_missing_source_and_bad_format(tmp_path):
    result = run("data", "import", "--format", "p5", str(tmp_path / "nope"), str(tmp_path / "out"))
    assert result.exit_code == 1 and "source directory not found" in result.output
    result = run("data", "import", "--format", "csv", str(tmp_path), str(tmp_path / "out"))
    assert result.exit_code == 2  # usage error: click lists the valid formats
    assert "amazon2023" in result.output and "recbole" in result.output


def test_stats_of_builtin_and_of_a_broken_dataset(tmp_path):
    result = run("data", "stats", "builtin:all_beauty_2023")
    assert result.exit_code == 0 and json.loads(result.output)["items"] == 356
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "dataset.json").write_text('{"format": "semid-dataset", "format_version": 99}')
    result = run("data", "stats", str(tmp_path / "broken"))
    assert result.exit_code == 1 and "format_version 99 is newer" in result.output


@pytest.mark.skipif(not ALL_BEAUTY.is_dir(), reason=f"All_Beauty 2023 files not present at {ALL_BEAUTY}")
def test_import_amazon2023_real_files(tmp_path):
    result = run("data", "import", "--format", "amazon2023", str(ALL_BEAUTY), str(tmp_path / "ab"))
    assert result.exit_code == 0, result.output
    assert "253 users, 356 items, 2535 interactions" in result.output
    data = load_dataset(tmp_path / "ab")
    builtin = load_dataset("builtin:all_beauty_2023")
    assert data.sequences.items == builtin.sequences.items
    assert sorted(data.items.item_ids) == sorted(builtin.items.item_ids)


def test_one_item_user_is_imported_and_reported_by_stats(tmp_path):
    src, out = write_p5(tmp_path / "src", "1 1 2 3\n2 2\n"), tmp_path / "out"
    assert run("data", "import", "--format", "p5", str(src), str(out)).exit_code == 0
    assert load_dataset(out).sequences.items[1] == ["B0002"]
    result = CliRunner().invoke(cli, ["data", "stats", str(out)])
    assert result.exit_code == 0
    split = json.loads(result.stdout)["leave_one_out"]
    assert split["users_without_test_case"] == 1 and split["test_cases"] == 1


def test_empty_history_is_rejected_by_the_cli(tmp_path):
    result = run("data", "import", "--format", "p5", str(write_p5(tmp_path / "src", "1 1 2\n2\n")), str(tmp_path / "out"))
    assert result.exit_code == 1 and "sequential_data.txt:2: user '2' has no items" in result.output
    assert not (tmp_path / "out").exists()
