"""`semid data subset` / `subset_dataset`: top items, user samples, k-core, bad input."""

from __future__ import annotations

from collections import Counter

import pytest
from click.testing import CliRunner

import semid
from semid.cli.main import cli
from semid.data import subset_dataset
from semid.errors import DataError, ParameterError


@pytest.fixture(scope="module")
def dataset():
    return semid.load_dataset("builtin:all_beauty_2023")


def _is_k_core(ds, k_user: int, k_item: int) -> bool:
    counts = Counter(i for seq in ds.sequences.items for i in seq)
    return all(len(s) >= k_user for s in ds.sequences.items) and all(counts[i] >= k_item for i in ds.items.item_ids)


def test_top_items_and_k_core(dataset):
    sub = subset_dataset(dataset, top_items=60, min_user_interactions=3, min_item_interactions=3)
    full_counts = Counter(i for seq in dataset.sequences.items for i in seq)
    order = {item: n for n, item in enumerate(dataset.items.item_ids)}
    top60 = set(sorted(full_counts, key=lambda i: (-full_counts[i], order[i]))[:60])
    assert 0 < len(sub.items) <= 60 and set(sub.items.item_ids) <= top60
    assert _is_k_core(sub, 3, 3)
    # order inside each kept sequence is the original order, and items keep their records
    original = dict(zip(dataset.sequences.user_ids, dataset.sequences.items))
    for user, seq in zip(sub.sequences.user_ids, sub.sequences.items):
        kept = [i for i in original[user] if i in sub.items]
        assert seq == kept
    some = sub.items.item_ids[0]
    assert sub.items[some] == dataset.items[some]
    assert sub.source["derived_from"]["top_items"] == 60


def test_user_sample_is_seeded(dataset):
    a = subset_dataset(dataset, users=100, min_user_interactions=1, min_item_interactions=1, seed=3)
    b = subset_dataset(dataset, users=100, min_user_interactions=1, min_item_interactions=1, seed=3)
    c = subset_dataset(dataset, users=100, min_user_interactions=1, min_item_interactions=1, seed=4)
    assert a.sequences.user_ids == b.sequences.user_ids and len(a.sequences) == 100
    assert a.sequences.user_ids != c.sequences.user_ids


def test_bad_requests_are_clear(dataset):
    with pytest.raises(ParameterError, match="top_items"):
        subset_dataset(dataset, top_items=0)
    with pytest.raises(DataError, match="empty"):
        subset_dataset(dataset, top_items=2, min_user_interactions=5)


def test_cli_writes_a_loadable_dataset(tmp_path):
    out = tmp_path / "sub"
    runner = CliRunner()
    result = runner.invoke(cli, ["data", "subset", "builtin:all_beauty_2023", str(out), "--top-items", "80",
                                 "--min-user", "3", "--min-item", "3", "--name", "tiny"])
    assert result.exit_code == 0, result.output
    loaded = semid.load_dataset(out)
    assert loaded.name == "tiny" and len(loaded.items) <= 80 and _is_k_core(loaded, 3, 3)
    again = runner.invoke(cli, ["data", "subset", "builtin:all_beauty_2023", str(out), "--top-items", "80"])
    assert again.exit_code == 1 and "already exists" in again.output
    empty = runner.invoke(cli, ["data", "subset", "builtin:all_beauty_2023", str(tmp_path / "e"), "--top-items", "1"])
    assert empty.exit_code == 1 and "empty" in empty.output and not (tmp_path / "e").exists()


def test_evaluate_popularity_baseline(tmp_path):
    import json

    result = CliRunner().invoke(cli, ["evaluate", "popularity", "--data", "builtin:all_beauty_2023", "--k", "5,10"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{"):])
    assert out["model_type"] == "popularity" and out["n_users"] > 0
    assert 0 < out["metrics"]["recall@10"] < 1 and out["metrics"]["coverage@10"] < 0.1
