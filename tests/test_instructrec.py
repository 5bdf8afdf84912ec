"""InstructRec: the instruction format (preference x intention x task form) and tuning end to end."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

import semid
from _lcrec_tiny import build_tiny_model, dataset_texts
from semid.cli.main import cli
from semid.errors import ParameterError
from semid.gen.instructrec import InstructRecConfig, build_instruction
from semid.gen.instructrec.train import _Facts

DATA = "builtin:all_beauty_2023"


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset(DATA)


def test_every_form_states_its_task_and_answers_from_the_data(data):
    facts = _Facts(data)
    items = data.items.item_ids
    history, target, others = items[:3], items[3], items[4:8]
    for form in ("pointwise", "pairwise", "matching", "reranking"):
        prompt, answer = build_instruction(form, facts, history, target, others, "implicit", "vague",
                                           random.Random(0))
        assert prompt.endswith("Answer:") and facts.title[history[0]] in prompt and "The user now says" in prompt
        if form == "pointwise":
            assert answer in (" Yes", " No")
        else:
            assert answer == " " + facts.title[target]
    explicit, _ = build_instruction("matching", facts, history, target, others, "explicit", "none", random.Random(0))
    assert "The user says:" in explicit and facts.title[history[0]] not in explicit
    with pytest.raises(ParameterError, match="forms must be among"):
        InstructRecConfig(forms=("essay",))


def test_tuning_reports_reranking_before_and_after(data, tmp_path):
    tiny = build_tiny_model(tmp_path / "m", dataset_texts(data))
    result = CliRunner().invoke(cli, ["train", "instructrec", "--data", DATA, "--out", str(tmp_path / "run"),
                                      "--llm", str(tiny), "--quiet", "--set", "train_users=16", "--set",
                                      "valid_users=4", "--set", "test_users=4", "--set", "candidates=5",
                                      "--set", "max_epochs=1", "--set", "max_history=4"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["metric"] == "hr@1" and summary["steps"] == 2
    for key in ("test", "test_untuned"):
        assert set(summary[key]) == {"hr@1", "hr@5", "hr@10", "ndcg@5", "ndcg@10"}
        assert summary[key]["hr@5"] >= summary[key]["hr@1"]
    assert summary["test"]["hr@5"] == 1.0  # 5 candidates: the target is always in the top 5
    assert sum(summary["formats"].values()) == 16 and "re-implemented" in summary["note"]
