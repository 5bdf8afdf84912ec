"""The cornac bridge's plumbing without cornac: code alignment to cornac's ids, reading a fitted model."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from semid.errors import DataError
from semid.interop import _cornac_dedup, codes_in_cornac_order, read_cornac

CODES = {"a": (1, 2), "b": (1, 2), "c": (0, 5)}
IID_MAP = {"c": 0, "a": 1, "b": 2}  # cornac numbers items in order of first appearance


def test_codes_follow_cornacs_internal_ids():
    np.testing.assert_array_equal(codes_in_cornac_order(CODES, IID_MAP, 3), [[0, 5], [1, 2], [1, 2]])


@pytest.mark.parametrize("codes, iid_map, message", [
    ({"a": (1, 2)}, {"a": 0, "z": 1}, "cornac item 'z' \\(internal id 1\\) has no code"),
    ({"a": (1, 2), "b": (3,)}, {"a": 0, "b": 1}, "item 'b' has \\[3\\]"),
    ({"a": (1, 2)}, {"a": 1}, "internal item id 0 has no raw item id"),
])
def test_misaligned_codes_name_the_item(codes, iid_map, message):
    with pytest.raises(DataError, match=message):
        codes_in_cornac_order(codes, iid_map, 2)


class TIGER(SimpleNamespace):
    """Stands for cornac's TIGER (read_cornac goes by the class lineage)."""


class LETTER(TIGER):
    """cornac's LETTER derives from its TIGER but keeps no collision level."""


def test_a_fitted_tiger_reads_back_without_its_collision_level_and_others_whole():
    table = codes_in_cornac_order(CODES, IID_MAP, 3)
    assert _cornac_dedup(table).tolist() == [0, 0, 1]  # cornac counts from 0 within a shared code
    with_level = np.concatenate([table, _cornac_dedup(table)[:, None]], 1)
    assert read_cornac(TIGER(sid_table=with_level, iid_map=IID_MAP)) == CODES
    for other in (LETTER, SimpleNamespace):  # LETTER, RPG, DiffGRM: the table is the codes
        assert read_cornac(other(sid_table=table, iid_map=IID_MAP)) == CODES
    with pytest.raises(DataError, match="not cornac TIGER's collision level"):
        read_cornac(TIGER(sid_table=table, iid_map=IID_MAP))


def test_reading_a_saved_model_without_cornac_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cornac", None)
    monkeypatch.setitem(sys.modules, "cornac.models", None)
    with pytest.raises(DataError, match="needs cornac \\(pip install cornac\\)"):
        read_cornac(tmp_path / "model.pkl")


def test_an_unfitted_model_is_refused():
    with pytest.raises(DataError, match="not a fitted cornac generative model"):
        read_cornac(SimpleNamespace(iid_map={}))


def test_exporting_for_cornac_without_cornac_is_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import semid
    from semid.cli.main import cli

    index = semid.make("random", seed=0).fit(semid.load_dataset("builtin:all_beauty_2023").items)
    index.save(tmp_path / "idx")
    monkeypatch.setitem(sys.modules, "semid.cornac_models", None)  # as when cornac is not installed
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "idx"), "--format", "cornac-rpg", str(tmp_path / "m.pkl")])
    assert result.exit_code == 1 and "exporting for cornac needs cornac (pip install cornac)" in result.output
    assert not (tmp_path / "m.pkl").exists()
