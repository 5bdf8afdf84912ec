"""Agent4Rec: traits bucketed as the reference, constrained choices, the page loop, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import semid
from semid.cli.main import cli
from semid.evaluation import MostPopular
from semid.gen.agents import build_profiles, simulate_agents
from semid.gen.agents.agent4rec import _bucket

DATA = "builtin:all_beauty_2023"


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset(DATA)


def test_percentile_buckets_by_hand():
    values = np.arange(1, 11, dtype=float)  # 60th / 90th percentiles: 6.4 and 9.1
    assert _bucket(values, (60, 90)).tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]


def test_profiles_come_from_training_ratings(data):
    profiles = build_profiles(data)
    assert profiles and all(p.activity in (0, 1, 2) and p.conformity in (0, 1, 2) for p in profiles)
    counts = np.bincount([p.activity for p in profiles], minlength=3)
    assert counts[0] >= counts[2]  # the 60th / 90th percentile cuts leave most users in the lowest bucket
    first = profiles[0]
    seq = data.sequences.items[data.sequences.user_ids.index(first.user_id)]
    assert first.history == list(seq[: len(seq) - 2]) and first.describe().startswith("An ")


class Agreeable:
    """Always the first option: watches everything, rates 1, goes on, rates the system 1 (plumbing only)."""

    name = "agreeable"

    def score(self, prompts, continuations):
        return [0.0 if i == 0 else -1.0 for i in range(len(prompts))]


def test_the_page_loop_and_its_metrics(data):
    result = simulate_agents(Agreeable(), data, MostPopular(data), agents=5, pages=3, items_per_page=2, seed=1,
                             progress=False)
    m = result["metrics"]
    assert m["view_rate"] == 1.0 and m["mean_rating"] == 1.0 and m["mean_exit_page"] == 3.0
    assert m["mean_satisfaction"] == 1.0 and result["agents"] == 5
    assert "on page 1" in result["records"][0]["memory"][0]


def test_agents_command_with_a_real_model(tmp_path, data):
    from _lcrec_tiny import build_tiny_model, dataset_texts

    tiny = build_tiny_model(tmp_path / "m", dataset_texts(data))
    result = CliRunner().invoke(cli, ["agents", "popularity", "--data", DATA, "--llm", str(tiny), "--agents", "2",
                                      "--pages", "2", "--items-per-page", "2"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert 0.0 <= metrics["view_rate"] <= 1.0 and 1.0 <= metrics["mean_exit_page"] <= 2.0
