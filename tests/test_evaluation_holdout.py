"""The graph-CF papers' random hold-out protocol: the split, the metrics by hand, masking, CF runs on it."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner
from safetensors.torch import load_file

import semid
from semid.cli.main import cli
from semid.data.dataset import Dataset, ItemTable, Sequences
from semid.errors import ParameterError
from semid.evaluation import MostPopular, evaluate_holdout, holdout_metrics, random_holdout
from semid.gen.cf import SplitProtocol, TrainOptions, read_config, train_cf

DATA = "builtin:all_beauty_2023"


def _dataset(sequences: dict[str, list[str]]) -> Dataset:
    items = sorted({i for s in sequences.values() for i in s})
    return Dataset("tiny", ItemTable([{"item_id": i, "title": f"item {i}"} for i in items]),
                   Sequences(list(sequences), list(sequences.values())))


def test_split_is_a_seeded_partition_with_every_part_non_empty():
    sequences = {f"u{u}": [f"i{(u * 7 + j) % 40}" for j in range(3 + u)] for u in range(12)}
    sequences["short"] = ["i1", "i2"]
    data = _dataset(sequences)
    split = random_holdout(data, seed=3)
    assert split.skipped == 1 and split.train[-1] == ["i1", "i2"] and split.test[-1] == []
    for u, seq in enumerate(data.sequences.items[:-1]):
        parts = [split.train[u], split.valid[u], split.test[u]]
        assert all(parts) and sorted(sum(parts, [])) == sorted(set(seq))  # disjoint, complete
        assert split.train[u] == [i for i in seq if i in set(split.train[u])]  # time order kept
        assert split.known_at_test[u] == [i for i in seq if i not in set(split.test[u])]
    longest = len(set(data.sequences.items[11]))
    assert len(split.test[11]) == round(0.1 * longest) or len(split.test[11]) == 1
    assert random_holdout(data, seed=3).test == split.test
    assert random_holdout(data, seed=4).test != split.test
    with pytest.raises(ParameterError, match="summing to 1"):
        random_holdout(data, ratios=(0.8, 0.1, 0.2))


def test_metrics_by_hand():
    ranked = [["a", "x", "b", None], ["y", "z", "w", "c"]]
    targets = [["a", "b", "q"], ["c"]]
    m = holdout_metrics(ranked, targets, ks=(2, 4))
    d = [1 / math.log2(i + 2) for i in range(4)]
    # user 1: hits at ranks 1 and 3 of 3 targets; user 2: hit at rank 4 of 1 target
    assert m["recall@2"] == pytest.approx((1 / 3 + 0) / 2)
    assert m["recall@4"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["ndcg@2"] == pytest.approx((d[0] / (d[0] + d[1]) + 0) / 2)
    assert m["ndcg@4"] == pytest.approx(((d[0] + d[2]) / (d[0] + d[1] + d[2]) + d[3] / d[0]) / 2)
    assert m["hit@2"] == pytest.approx(0.5) and m["hit@4"] == pytest.approx(1.0)
    with pytest.raises(ParameterError, match="no held-out items"):
        holdout_metrics([["a"]], [[]], ks=(1,))


class _Recorder:
    def __init__(self):
        self.calls = []

    def recommend(self, histories, k, *, exclude=None, users=None):
        self.calls.append((histories, exclude, users))
        return [[] for _ in histories]


@pytest.mark.parametrize("split", ["valid", "test"])
def test_the_model_sees_and_never_returns_the_known_items(split):
    data = _dataset({f"u{u}": [f"i{(u + j) % 30}" for j in range(10)] for u in range(5)})
    holdout = random_holdout(data)
    recorder = _Recorder()
    result = evaluate_holdout(recorder, holdout, split=split, ks=(5,), progress=False)
    histories, exclude, users = recorder.calls[0]
    for row, user in enumerate(users):
        u = holdout.user_ids.index(user)
        known = holdout.train[u] if split == "valid" else holdout.known_at_test[u]
        assert histories[row] == known and exclude[row] == set(known)
        assert not set(holdout.targets(split)[u]) & exclude[row]
    assert result["metrics"]["recall@5"] == 0.0 and result["settings"]["protocol"] == "random hold-out"


def test_popularity_counts_the_holdout_training_part():
    data = _dataset({"u1": ["a", "b", "c"], "u2": ["b", "c", "d"], "u3": ["c", "d", "e"]})
    popular = MostPopular(data, train_sequences=[["e"], ["e"], ["d"]])
    assert popular.recommend([[]], 2) == [["e", "d"]]


def test_cf_run_trains_and_evaluates_on_the_holdout(tmp_path):
    data = semid.load_dataset(DATA)
    run = tmp_path / "lgcn"
    protocol = SplitProtocol("holdout", split_seed=5)
    summary = train_cf(run, data, model_name="lightgcn", overrides={"hidden": 16, "batch_size": 512},
                       options=TrainOptions(max_epochs=2), protocol=protocol, progress=False)
    assert summary["epochs"] == 2
    stored = read_config(run)
    assert stored["protocol"] == {"name": "holdout", "ratios": [0.8, 0.1, 0.1], "split_seed": 5}
    holdout = protocol.holdout(data)
    graph = load_file(run / "graph.safetensors")  # the graph's edges are exactly the hold-out's train pairs
    item_ids = data.items.item_ids
    edges = {(holdout.user_ids[u], item_ids[i]) for u, i in zip(graph["users"].tolist(), graph["items"].tolist())}
    assert edges == {(user, item) for user, train in zip(holdout.user_ids, holdout.train) for item in train}
    with pytest.raises(ParameterError, match="start a new run for another protocol"):
        train_cf(run, data, options=TrainOptions(max_epochs=3), resume=True, protocol=SplitProtocol(), progress=False)
    for command in (["cf", "evaluate", str(run)], ["evaluate", str(run)]):
        out = CliRunner().invoke(cli, [*command, "--data", DATA, "--k", "10,20"])
        assert out.exit_code == 0, out.output
        result = json.loads(out.stdout)
        assert result["settings"]["protocol"] == "random hold-out" and "hit@20" in result["metrics"]


def test_cli_protocol_option_and_bad_ratios(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(cli, ["cf", "train", "lightgcn", "--data", DATA, "--out", str(tmp_path / "x"),
                              "--protocol", "holdout", "--split-ratios", "0.8,0.3,0.1"])
    assert bad.exit_code != 0 and "summing to 1" in bad.output and not (tmp_path / "x").exists()
    good = runner.invoke(cli, ["cf", "train", "sasrec", "--data", DATA, "--out", str(tmp_path / "s"), "--max-epochs", "1",
                               "--protocol", "holdout", "--split-ratios", "0.6,0.2,0.2",
                               "--set", "hidden=16", "--set", "n_blocks=1", "--set", "max_len=10"])
    assert good.exit_code == 0, good.output
    assert read_config(tmp_path / "s")["protocol"]["ratios"] == [0.6, 0.2, 0.2]
