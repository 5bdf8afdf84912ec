"""Agent4Rec: traits bucketed as the reference, constrained choices, the page loop, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import semid
from semid.cli.main import cli
from semid.errors import ParameterError
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
    record = result["records"][0]
    assert "on page 1" in record["memory"][0] and record["memory"][1] == "After page 1 I felt satisfied."
    assert record["memory"][-1] == "Reflection: this recommender suits my taste." and m["satisfied_pages"] == 1.0
    assert record["feelings"] == ["satisfied"] * 3


class Moody:
    """Deterministic but varied choices (a hash of the prompt); raises after ``fail_after`` calls (a kill)."""

    name = "moody"

    def __init__(self, fail_after: int | None = None):
        self.calls, self.fail_after = 0, fail_after

    def score(self, prompts, continuations):
        import hashlib

        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("killed")
        return [int(hashlib.sha256((p + c).encode()).hexdigest()[:6], 16) / 2**24 for p, c in zip(prompts, continuations)]


def test_a_killed_run_continues_and_loses_at_most_one_page(data, tmp_path):
    kwargs = dict(agents=4, pages=3, items_per_page=3, seed=2, progress=False)
    whole_backend = Moody()
    whole = simulate_agents(whole_backend, data, MostPopular(data), **kwargs)
    state = tmp_path / "agents.json"
    first = Moody(fail_after=whole_backend.calls // 2)
    with pytest.raises(KeyboardInterrupt):
        simulate_agents(first, data, MostPopular(data), state=state, **kwargs)
    saved = json.loads(state.read_text())
    assert saved["records"] or saved["current"]  # something was kept
    second = Moody()
    resumed = simulate_agents(second, data, MostPopular(data), state=state, **kwargs)
    assert resumed["metrics"] == whole["metrics"] and resumed["records"] == whole["records"]
    # Only the page in progress at the kill was decided twice: one page is at most 2 calls per item
    # (watch, rate) plus feeling, reflection and the next-page decision.
    redone = (first.calls - 1) + second.calls - whole_backend.calls
    assert 0 <= redone <= 2 * kwargs["items_per_page"] + 3
    with pytest.raises(ParameterError, match="other settings"):
        simulate_agents(Moody(), data, MostPopular(data), state=state, **{**kwargs, "seed": 3})


def test_memory_retrieval_keeps_the_entries_nearest_the_item(data):
    from semid.gen.agents import MemoryRetriever

    def embed(texts):  # a fake encoder: one axis per keyword (plumbing; the default is MiniLM)
        return np.array([[t.count("horror"), t.count("comedy"), t.count("page") + 0.1] for t in texts], float)

    memory = ["I watched a horror film on page 1.", "After page 1 I felt neutral.", "A comedy on page 2.",
              "horror horror on page 3."]
    kept = MemoryRetriever(k=2, embed=embed).recall(memory, "horror")
    assert kept == [memory[0], memory[3]]  # the two horror entries, in the order they were written
    assert MemoryRetriever(k=5, embed=embed).recall(memory, "x") == memory
    result = simulate_agents(Agreeable(), data, MostPopular(data), agents=2, pages=3, items_per_page=2,
                             memory="retrieval", memory_k=2, embed=embed, progress=False)
    assert result["memory"] == "retrieval" and result["metrics"]["view_rate"] == 1.0
    with pytest.raises(ParameterError, match="memory must be"):
        simulate_agents(Agreeable(), data, MostPopular(data), memory="everything", progress=False)


def test_agents_command_with_a_real_model(tmp_path, data):
    from _lcrec_tiny import build_tiny_model, dataset_texts

    tiny = build_tiny_model(tmp_path / "m", dataset_texts(data))
    result = CliRunner().invoke(cli, ["agents", "popularity", "--data", DATA, "--llm", str(tiny), "--agents", "2",
                                      "--pages", "2", "--items-per-page", "2"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert 0.0 <= metrics["view_rate"] <= 1.0 and 1.0 <= metrics["mean_exit_page"] <= 2.0


def test_memory_retrieval_with_the_default_minilm():
    from semid.gen.agents import MemoryRetriever

    memory = ["The weather was sunny on page 1.", "I watched a scary horror film and rated it 5."]
    assert MemoryRetriever(k=1).recall(memory, "Night of the Living Dead, a horror movie") == [memory[1]]


class Naysayer:
    """Prefers "no" by a fixed 2 nats whatever the item; an item with an even-length title moves "yes" up by 1,
    any other down by 1. Uncalibrated it never watches; calibrated it watches exactly the even-length titles."""

    name = "naysayer"

    def __init__(self):
        self.watch_titles: list[str] = []
        self.calls = 0

    def score(self, prompts, continuations):
        self.calls += 1
        out = []
        for i, (prompt, option) in enumerate(zip(prompts, continuations)):
            if prompt.endswith("Would you watch it? Answer yes or no. Answer:"):
                title = prompt.rsplit('shows you "', 1)[1].split('". Would', 1)[0]
                if i == 0 and title != "N/A":
                    self.watch_titles.append(title)
                signal = 0.0 if title == "N/A" else (1.0 if len(title) % 2 == 0 else -1.0)
                out.append(-2.0 + signal if option == " yes" else 0.0)
            else:
                out.append(0.0 if i == 0 else -1.0)
        return out


def test_calibration_cancels_a_fixed_answer_bias_and_keeps_the_item_signal(data):
    kwargs = dict(agents=4, pages=2, items_per_page=3, seed=0, progress=False)
    plain = simulate_agents(Naysayer(), data, MostPopular(data), **kwargs)
    assert plain["metrics"]["view_rate"] == 0.0 and plain["calibrate"] == "none"
    for mode in ("items", "all"):
        backend = Naysayer()
        calibrated = simulate_agents(backend, data, MostPopular(data), calibrate=mode, **kwargs)
        even = [len(t) % 2 == 0 for t in backend.watch_titles]
        assert 0 < sum(even) < len(even)  # the test sees both kinds of item
        assert calibrated["metrics"]["view_rate"] == pytest.approx(sum(even) / len(even))
        assert calibrated["calibrate"] == mode and f"{mode} calibrated" in calibrated["method"]
    with pytest.raises(ParameterError, match="calibrate must be one of"):
        simulate_agents(Naysayer(), data, MostPopular(data), calibrate="yes", **kwargs)


def test_the_content_free_prior_is_scored_once_per_prompt():
    from semid.gen.agents import CONTENT_FREE, Chooser

    backend = Naysayer()
    choose = Chooser(backend, calibrate=True)
    free = f'Agent.\n\nThe recommender shows you "{CONTENT_FREE}". Would you watch it? Answer yes or no. Answer:'
    picks = [choose(free.replace(CONTENT_FREE, title), ["yes", "no"], free) for title in ("ab", "abc", "abcd")]
    assert picks == [0, 1, 0] and backend.calls == 3 + 1  # three items, one shared prior
    assert Chooser(Naysayer())(free.replace(CONTENT_FREE, "ab"), ["yes", "no"], free) == 1  # uncalibrated: "no"
