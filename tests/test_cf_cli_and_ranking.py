"""`semid cf` commands, full-ranking recommend() semantics, and the LightGCN graph."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import semid
from semid.cli.main import cli
from semid.embeddings import read_embeddings
from semid.errors import UnknownItemError
from semid.gen.cf import CFRecommender, build_config, build_model, prepare_cf_data
from semid.gen.cf.lightgcn import normalized_adjacency

DATA = "builtin:all_beauty_2023"
TINY = ["--set", "hidden=16", "--set", "n_blocks=1", "--set", "max_len=10"]


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset(DATA)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cf") / "sasrec"
    result = CliRunner().invoke(cli, ["cf", "train", "sasrec", "--data", DATA, "--out", str(run), "--max-epochs", "2", *TINY])
    assert result.exit_code == 0, result.output
    return run, json.loads(result.stdout)


def test_train_prints_the_summary(trained_run):
    _, summary = trained_run
    assert summary["epochs"] == 2 and summary["stopped"] == "max_epochs"


def test_evaluate_prints_protocol_json(trained_run):
    run, _ = trained_run
    result = CliRunner().invoke(cli, ["cf", "evaluate", str(run), "--data", DATA, "--k", "5,10"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["settings"]["split"] == "test" and out["settings"]["full_ranking"] is True
    assert {"recall@5", "ndcg@10"} <= set(out["metrics"]) and out["run"]["model"] == "sasrec"


def test_export_writes_aligned_embedding_file(trained_run, data, tmp_path):
    run, _ = trained_run
    out = tmp_path / "emb.npz"
    result = CliRunner().invoke(cli, ["cf", "export-embeddings", str(run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    ids, matrix, meta = read_embeddings(out)
    assert ids == data.items.item_ids and matrix.shape == (len(ids), 16)
    assert meta["model"] == "cf:sasrec"
    again = CliRunner().invoke(cli, ["cf", "export-embeddings", str(run), "--out", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output


def test_user_errors_exit_1_with_one_line(trained_run, tmp_path):
    run, _ = trained_run
    runner = CliRunner()
    other = runner.invoke(cli, ["cf", "evaluate", str(run), "--data", "builtin:all_beauty_2023", "--k", "ten"])
    assert other.exit_code == 1 and "--k" in other.output
    bad = runner.invoke(cli, ["cf", "train", "sasrec", "--data", DATA, "--out", str(tmp_path / "x"), "--set", "hidn=3"])
    assert bad.exit_code == 1 and "valid settings" in bad.output and len(bad.output.strip().splitlines()) == 1
    missing = runner.invoke(cli, ["cf", "evaluate", str(tmp_path), "--data", DATA])
    assert missing.exit_code == 1 and "is not a semid run: run.json is missing" in missing.output
    exists = runner.invoke(cli, ["cf", "train", "sasrec", "--data", DATA, "--out", str(run)])
    assert exists.exit_code == 1 and "--resume" in exists.output


def _model(data):
    cf = prepare_cf_data(data)
    torch.manual_seed(0)
    model = build_model("sasrec", cf.n_items, cf.n_users, build_config("sasrec", {"hidden": 16, "max_len": 10}))
    return CFRecommender(model, cf.item_ids, cf.user_ids, max_len=10), cf


def test_recommend_ranks_by_scores_and_honours_exclusions(data):
    recommender, cf = _model(data)
    histories = [data.sequences.items[0][:3], data.sequences.items[1][:1]]
    lists = recommender.recommend(histories, 20)
    seq = torch.zeros(2, 10, dtype=torch.long)
    seq[0, -3:] = torch.tensor([cf.item_index()[i] for i in histories[0]])
    seq[1, -1] = cf.item_index()[histories[1][0]]
    expected = torch.topk(recommender.model.score(seq, None), 20).indices
    assert lists == [[cf.item_ids[j] for j in row] for row in expected.tolist()]
    banned = set(lists[0][:5])
    again = recommender.recommend(histories, 20, exclude=[banned, set()])
    assert not banned & set(again[0]) and again[0] == [i for i in lists[0] if i not in banned] + again[0][15:]
    everything = recommender.recommend(histories[:1], len(cf.item_ids) + 5, exclude=[set(cf.item_ids[:10])])
    assert len(everything[0]) == len(cf.item_ids) - 10  # shorter list, never an excluded item


def test_padding_does_not_change_the_prediction(data):
    """Trimming/padding of the history window is invisible to the model."""
    recommender, cf = _model(data)
    model = recommender.model.eval()
    history = [cf.item_index()[i] for i in data.sequences.items[2][:4]]
    short = torch.tensor([history])
    long = torch.tensor([[0] * 6 + history])
    torch.testing.assert_close(model.score(short, None), model.score(long, None))


def test_unknown_history_item_is_refused(data):
    recommender, _ = _model(data)
    with pytest.raises(UnknownItemError, match="not-an-item"):
        recommender.recommend([["not-an-item"]], 5)


def test_normalized_adjacency_is_symmetric_with_degree_scaling():
    users = np.array([0, 0, 1])
    items = np.array([0, 1, 1])
    dense = normalized_adjacency(users, items, 2, 2).to_dense().numpy()
    np.testing.assert_allclose(dense, dense.T)
    # user 0 (degree 2) - item 1 (degree 2): 1 / sqrt(2 * 2)
    assert dense[0, 3] == pytest.approx(0.5)
    # user 1 (degree 1) - item 1 (degree 2): 1 / sqrt(1 * 2)
    assert dense[1, 3] == pytest.approx(2 ** -0.5)
    assert dense[0, 1] == 0 and dense[2, 3] == 0  # no user-user or item-item edges


def test_recommend_from_another_directory_shows_titles_without_data(trained_run, data, tmp_path, monkeypatch):
    """The run records its dataset's absolute path, so titles come without --data from anywhere."""
    run, _ = trained_run
    monkeypatch.chdir(tmp_path)
    history = ",".join(data.sequences.items[0][:2])
    result = CliRunner().invoke(cli, ["recommend", str(run.resolve()), "--history", history, "--k", "3"])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert len(rows) == 3 and all(title == data.items[item]["title"] for _, item, title in rows)
