"""`semid train tiger`, `semid evaluate`, `semid recommend` through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import semid
from semid.cli.main import cli
from semid.data.dataset import Dataset, Sequences, save_dataset
from semid.evaluation import leave_one_out

TINY = ["num_layers=1", "num_decoder_layers=1", "d_model=16", "num_heads=2", "d_kv=8", "d_ff=32",
        "user_buckets=11", "eval_users=20", "eval_beams=5", "batch_size=256"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiger-cli")
    full = semid.load_dataset("builtin:all_beauty_2023")
    seqs = full.sequences
    dataset = Dataset("beauty-small", full.items, Sequences(seqs.user_ids[:80], seqs.items[:80]))
    data = str(save_dataset(dataset, root / "data"))  # an 80-user slice keeps the tests fast
    split = leave_one_out(dataset)
    semid.make("random").fit(dataset.items, split.train_sequences).save(root / "index")
    semid.make("random", seed=3).fit(dataset.items, split.train_sequences).save(root / "other-index")
    args = ["train", "tiger", "--data", data, "--index", str(root / "index"), "--out", str(root / "run"),
            "--max-epochs", "1", "--seed", "1", "--quiet", *[a for s in TINY for a in ("--set", s)]]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return root, dataset, json.loads(result.stdout), data


def test_train_prints_a_summary(trained):
    _, _, summary, _ = trained
    assert summary["epochs"] == 1 and summary["stopped"] == "max_epochs"


def test_evaluate_prints_json_with_the_user_sample(trained):
    root, _, _, data = trained
    result = CliRunner().invoke(cli, ["evaluate", str(root / "run"), "--data", data, "--users", "15",
                                      "--k", "5,10", "--beams", "10"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["n_users"] == 15 and out["settings"]["user_sample"] == {"n_users": 15, "seed": 0}
    assert out["model_type"] == "tiger" and out["settings"]["decoding"]["num_beams"] == 10
    for key in ("recall@10", "ndcg@5", "coverage@10", "popularity_percentile@5", "invalid_rate"):
        assert key in out["metrics"]
    assert out["metrics"]["invalid_rate"] == 0.0


def test_evaluate_with_d3_and_a_popularity_assistant(trained):
    root, _, _, data = trained
    result = CliRunner().invoke(cli, ["evaluate", str(root / "run"), "--data", data, "--users", "10",
                                      "--k", "5", "--decoding", "d3", "--assistant", "popularity", "--alpha", "0.3"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["settings"]["decoding"]["decoding"] == "d3" and out["settings"]["decoding"]["alpha"] == 0.3


def test_recommend_prints_ids_with_titles(trained):
    root, dataset, _, data = trained
    history = dataset.sequences.items[0][:3]
    result = CliRunner().invoke(cli, ["recommend", str(root / "run"), "--history", history[0],
                                      "--history", ",".join(history[1:]), "--k", "4"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4
    rank, item, title = lines[0].split("\t")
    assert rank == "1" and item in dataset.items and title == dataset.items[item]["title"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--k", "5,1000"], "--k 5,1000 include 1000, more than the catalogue's 356 items"),
        (["--max-history", "0"], "--max-history must be >= 1"),
        (["--device", "banana"], "unknown device 'banana'"),
        (["--index", "OTHER"], "fingerprint"),
        (["--assistant", "popularity"], "--decoding d3"),
        (["--k", "five"], "comma-separated"),
    ],
)
def test_evaluate_bad_input_exits_1_with_one_line(trained, args, message):
    root, _, _, data = trained
    args = [str(root / "other-index") if a == "OTHER" else a for a in args]
    result = CliRunner().invoke(cli, ["evaluate", str(root / "run"), "--data", data, "--users", "5", *args])
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_recommend_unknown_item_and_missing_run(trained, tmp_path):
    root, _, _, data = trained
    result = CliRunner().invoke(cli, ["recommend", str(root / "run"), "--history", "NOT-AN-ITEM"])
    assert result.exit_code == 1 and "NOT-AN-ITEM" in result.stderr
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--data", data])
    assert result.exit_code == 1 and "not a semid run" in result.stderr


def test_train_refuses_an_existing_run_without_resume(trained):
    root, _, _, data = trained
    result = CliRunner().invoke(cli, ["train", "tiger", "--data", data, "--index", str(root / "index"),
                                      "--out", str(root / "run")])
    assert result.exit_code == 1 and "--resume" in result.stderr


def test_evaluate_with_d3_and_a_cf_run_as_assistant(trained):
    """D3's text-free assistant can be any CF run: its item scores are aggregated through the trie."""
    root, _, _, data = trained
    cf_run = root / "sasrec"
    trained_cf = CliRunner().invoke(cli, ["cf", "train", "sasrec", "--data", data, "--out", str(cf_run),
                                          "--max-epochs", "1", "--threads", "1", "--set", "hidden=8"])
    assert trained_cf.exit_code == 0, trained_cf.output
    result = CliRunner().invoke(cli, ["evaluate", str(root / "run"), "--data", data, "--users", "10", "--k", "5",
                                      "--decoding", "d3", "--assistant", str(cf_run), "--alpha", "0.5"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["settings"]["decoding"]["assistant"] == str(cf_run)
    assert out["metrics"]["invalid_rate"] == 0.0 and out["n_users"] == 10


def test_diagnose_reports_every_check_as_json(trained):
    root, _, _, data = trained
    result = CliRunner().invoke(cli, ["diagnose", "tiger", str(root / "run"), "--data", data, "--users", "20",
                                      "--beams", "10"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["users"] == 20 and out["verdict"] in {"healthy", "collapsed"}
    nll = out["position_nll"]
    assert len(nll["model"]) == len(nll["unigram"]) == len(nll["bigram"]) >= 1
    for key in ("distinct@10", "swap_overlap@10", "zero_encoder_kl", "encoder_cosine", "weight_growth"):
        assert key in out
    assert 0 <= out["swap_overlap@10"] <= 1 and -1 <= out["encoder_cosine"] <= 1 and out["zero_encoder_kl"] >= 0
    assert set(out["weight_growth"]) >= {"attention", "feed_forward", "embedding"}


def test_diagnose_rejects_a_negative_user_count(trained):
    root, _, _, data = trained
    result = CliRunner().invoke(cli, ["diagnose", "tiger", str(root / "run"), "--data", data, "--users", "-1"])
    assert result.exit_code == 1 and "--users must be >= 0" in result.output


def test_diagnose_lists_works_for_any_run(trained):
    root, _, _, data = trained
    result = CliRunner().invoke(cli, ["diagnose", "lists", str(root / "run"), "--data", data, "--users", "15"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["users"] == 15 and out["verdict"] in {"healthy", "collapsed"}
    assert 1 <= out["distinct@10"] <= 150 and 0 <= out["swap_overlap@10"] <= 1


def test_a_run_is_evaluated_only_on_its_own_dataset(trained, tmp_path):
    """Items differ: refused with both datasets named (a top-500 run on full Beauty used to be accepted)."""
    root, dataset, _, _ = trained
    other = Dataset("other", dataset.items, Sequences(dataset.sequences.user_ids[:40], dataset.sequences.items[:40]))
    # Same items, other users: evaluating is allowed (the items match), resuming is not.
    allowed = CliRunner().invoke(cli, ["evaluate", str(root / "run"), "--data", str(save_dataset(other, tmp_path / "o")),
                                       "--users", "3", "--k", "5"])
    assert allowed.exit_code == 0, allowed.output
    fewer = semid.load_dataset("builtin:all_beauty_2023")
    fewer_items = Dataset("fewer", type(fewer.items)(fewer.items.records[:-1]),
                          Sequences([u for u, s in zip(fewer.sequences.user_ids, fewer.sequences.items)
                                     if fewer.items.records[-1]["item_id"] not in s],
                                    [s for s in fewer.sequences.items if fewer.items.records[-1]["item_id"] not in s]))
    result = CliRunner().invoke(cli, ["evaluate", str(root / "run"), "--data",
                                      str(save_dataset(fewer_items, tmp_path / "f")), "--users", "3", "--k", "5"])
    assert result.exit_code == 1
    assert "was trained on dataset 'beauty-small'" in result.stderr and "has other items" in result.stderr


def test_a_sample_larger_than_the_split_is_recorded_as_every_user(trained):
    root, _, _, data = trained
    result = CliRunner().invoke(cli, ["evaluate", str(root / "run"), "--data", data, "--users", "100000", "--k", "5"])
    out = json.loads(result.stdout)
    assert out["n_users"] == 80 and out["settings"]["user_sample"] is None
    assert out["settings"]["model"]["max_history"] == 20 and out["settings"]["model"]["class"] == "TigerRecommender"


def test_demo_writes_its_metrics_next_to_the_baseline_and_says_where(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--max-epochs", "1"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["most_popular"]["recall@10"] > 0 and "recall@10" in saved["metrics"]
    last = result.stderr.strip().splitlines()[-1]
    assert "vs most-popular" in last and str(out / "metrics.json") in last and str(out / "tiger") in last
