"""InteRecAgent: plan validation, the tools over the buffer, planners, the simulator, the terminal chat."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import semid
from semid.cli.main import cli
from semid.errors import ParameterError
from semid.evaluation import leave_one_out
from semid.gen.agents import Agent, LLMPlanner, RulePlanner, build_items_db, simulate, validate_plan

DATA = "builtin:all_beauty_2023"


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset(DATA)


@pytest.fixture(scope="module")
def db(tmp_path_factory, data):
    return build_items_db(data, tmp_path_factory.mktemp("db") / "items.db")


def test_plans_are_validated_and_get_a_map_step():
    plan = validate_plan([{"tool_name": "rank", "input": {"schema": "popularity"}}])
    assert plan[-1] == {"tool_name": "map", "input": "5"}
    for bad, message in [([], "non-empty"), ([{"tool_name": "delete_all"}], "unknown tool 'delete_all'"),
                         ("rank", "non-empty JSON list"), ([{"tool": "map"}], "tool_name")]:
        with pytest.raises(ParameterError, match=message):
            validate_plan(bad)


def test_tools_filter_rank_and_map_the_buffer(data, db):
    agent = Agent(data, db, RulePlanner())
    agent.buffer = list(agent.items)
    agent.run_tool("hard_filter", "SELECT item_id FROM items WHERE price IS NOT NULL AND price < 10")
    cheap = set(agent.buffer)
    assert cheap and all(float(data.items[i]["price"]) < 10 for i in cheap)
    agent.run_tool("rank", {"schema": "popularity"})
    pops = [agent.popularity[agent.position[i]] for i in agent.buffer]
    assert pops == sorted(pops, reverse=True)
    titles = json.loads(agent.run_tool("map", "3"))
    assert len(titles) == 3 and agent.buffer == []
    answer = json.loads(agent.run_tool("lookup", "SELECT count(*) AS n FROM items"))
    assert answer == [{"n": 356}]
    seed = data.items[data.items.item_ids[0]]["title"]
    agent.buffer = list(agent.items)
    agent.run_tool("soft_filter", seed)
    assert data.items.item_ids[0] not in agent.buffer  # the seed is not its own recommendation


def test_a_bad_llm_plan_is_counted_and_the_rules_take_over(data, db):
    class Babbler:
        name = "babbler"

        def generate(self, prompts, **_):
            return ["I think you should buy shampoo!" for _ in prompts]

    agent = Agent(data, db, LLMPlanner(Babbler()))
    result = agent.turn("I want some shampoo under 30 dollars")
    assert agent.plan_failures == 1 and result["items"] and result["plan"][0]["tool_name"] == "hard_filter"


def test_the_user_profile_memory_masks_unwanted_items(data, db):
    agent = Agent(data, db, RulePlanner())
    first = agent.turn("Recommend me something.")["items"]
    disliked = data.items[first[0]]["title"]
    second = agent.turn(f"I don't like {disliked}. Something else.")["items"]
    assert first[0] in agent.profile.unwanted and first[0] not in second


def test_template_simulator_reports_hit_and_average_turns(data, db):
    cases = leave_one_out(data).test[:15]
    result = simulate(lambda: Agent(data, db, RulePlanner()), data, cases, turns=3)
    assert set(result) == {"hit@3", "average_turns", "users", "records"} and result["users"] == 15
    assert 1.0 <= result["average_turns"] <= 4.0
    again = simulate(lambda: Agent(data, db, RulePlanner()), data, cases, turns=3)
    assert again["hit@3"] == result["hit@3"]  # deterministic


def test_simulate_from_the_command_line(db):
    result = CliRunner().invoke(cli, ["chat", "--data", DATA, "--db", str(db), "--simulate", "5", "--turns", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["users"] == 5


def test_terminal_chat_through_a_pseudo_terminal(db):
    semid_script = shutil.which("semid", path=str(Path(sys.executable).parent))
    if semid_script is None:
        pytest.skip("the semid console script is not installed next to this Python")
    leader, follower = pty.openpty()
    process = subprocess.Popen([semid_script, "chat", "--data", DATA, "--db", str(db)], stdin=follower,
                               stdout=follower, stderr=follower, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    os.close(follower)
    output = b""

    def read_until(marker: bytes, seconds: float = 60) -> None:
        nonlocal output
        deadline = time.monotonic() + seconds
        while marker not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    output += os.read(leader, 4096)
                except OSError:
                    break

    try:
        read_until(b"you> ")
        os.write(leader, b"I want some shampoo under 30 dollars\n")
        read_until(b"I recommend")
        os.write(leader, b"\n")
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    assert b"agent> " in output and b"I recommend: 1." in output and process.returncode == 0
