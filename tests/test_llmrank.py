"""LLMRank: published prompt text, parser and score rule, bootstrapping, the retry flag, variants, CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import semid
from _lcrec_tiny import build_tiny_model, dataset_texts
from semid.cli.main import cli
from semid.errors import ParameterError
from semid.gen.llm.candidates import CandidateList
from semid.gen.llm.rendering import ItemRenderer
from semid.gen.llmrank import LLMRankSettings, build_prompt, llmrank_evaluate, rank_candidates

DATA = "builtin:all_beauty_2023"


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset(DATA)


def test_sequential_prompt_is_the_published_text_with_its_list_repr():
    prompt = build_prompt("sequential", ["Toy Story", "Heat"], ["Jumanji", "GoldenEye"], domain="movie")
    assert prompt == (
        "I've watched the following movies in the past in order:\n['0. Toy Story', '1. Heat']\n\n"
        "Now there are 2 candidate movies that I can watch next:\n['0. Jumanji', '1. GoldenEye']\n"
        "Please rank these 2 movies by measuring the possibilities that I would like to watch next most, "
        "according to my watching history. Please think step by step.\n"
        "Please show me your ranking results with order numbers. Split your output with line break. "
        "You MUST rank the given candidate movies. You can not generate movies that are not in the given "
        "candidate list."
    )
    recency = build_prompt("recency", ["Toy Story", "Heat"], ["Jumanji"], domain="movie")
    assert "Please think step by step.\nNote that my most recently watched movie is Heat.\nPlease show me" in recency
    icl = build_prompt("icl", ["Toy Story", "Heat"], ["Jumanji"], domain="movie")
    assert icl.startswith("I've watched the following movies in the past in order:\n['0. Toy Story']\n\n"
                          "Then if I ask you to recommend a new movie to me according to my watching history, "
                          "you should recommend Heat and now that I've just watched Heat, there are 1 candidate")
    assert "products" in build_prompt("sequential", ["a"], ["b"])  # the Games wording for product catalogues


class Scripted:
    """Answers with a fixed preference over titles (plumbing only); records every prompt."""

    name = "scripted"

    def __init__(self, answers):
        self.answers = list(answers)
        self.prompts = []

    def generate(self, prompts, *, max_new_tokens=128, temperature=0.0, seed=0):
        self.prompts.extend(prompts)
        return [self.answers.pop(0) for _ in prompts]


def _lists(data, n=5):
    items = data.items.item_ids
    return [CandidateList("u", (items[10], items[11]), items[2], tuple(items[:n]), 2, "random")]


def test_score_rule_ranks_parsed_candidates_and_ties_the_rest(data):
    renderer = ItemRenderer("title", data)
    items = data.items.item_ids
    answer = f"1. {renderer(items[3])}\n2. {renderer(items[2])}\nsomething else"
    records = rank_candidates(Scripted([answer]), _lists(data), renderer, LLMRankSettings(candidates=5),
                              progress=False)
    assert records[0]["ranked"] == [items[3], items[2]] and records[0]["valid"]
    assert records[0]["invalid_lines"] == 1


def test_bootstrap_rounds_shuffle_the_candidates_and_add_scores(data):
    renderer = ItemRenderer("title", data)
    items = data.items.item_ids
    prefer = "\n".join(renderer(items[j]) for j in (4, 1))
    backend = Scripted([prefer] * 3)
    records = rank_candidates(backend, _lists(data), renderer, LLMRankSettings(candidates=5, bootstrap=3, seed=1),
                              progress=False)
    assert len(backend.prompts) == 3 and len(set(backend.prompts)) > 1  # other candidate orders
    assert records[0]["ranked"] == [items[4], items[1]]


def test_the_label_dependent_retry_is_off_unless_asked(data):
    renderer = ItemRenderer("title", data)
    items = data.items.item_ids
    miss, hit = renderer(items[0]), renderer(items[2])
    plain = rank_candidates(Scripted([miss, hit]), _lists(data), renderer, LLMRankSettings(candidates=5),
                            progress=False)
    assert items[2] not in plain[0]["ranked"] and len(plain[0]["answers"]) == 1
    leaky = rank_candidates(Scripted([miss, hit]), _lists(data), renderer,
                            LLMRankSettings(candidates=5, retry_if_missing_target=True), progress=False)
    assert leaky[0]["ranked"] == [items[2]] and len(leaky[0]["answers"]) == 2


def test_settings_are_checked():
    with pytest.raises(ParameterError, match="position"):
        LLMRankSettings(position="25")
    with pytest.raises(ParameterError, match="parser 'sid' needs rendering"):
        LLMRankSettings(parser="sid")
    with pytest.raises(ParameterError, match="must be one of"):
        LLMRankSettings(prompt="chain")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, data):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "m", dataset_texts(data))


def test_end_to_end_with_a_real_model_and_the_loglik_variant(data, tiny):
    from semid.gen.llm.backend import LocalCausalLM

    backend = LocalCausalLM.load(tiny, batch_size=4)
    generated = llmrank_evaluate(backend, data, LLMRankSettings(max_new_tokens=12), users=3, progress=False)
    assert generated["protocol"]["users"] == 3 and generated["protocol"]["candidate_source"] == "random"
    assert set(generated["metrics"]) >= {"ndcg@10", "hr@1_valid", "hr@1_all", "valid_ratio", "popularity_bias"}
    for record in generated["records"]:
        assert len(record["candidates"]) == 20 and record["target"] in record["candidates"]
    scored = llmrank_evaluate(backend, data, LLMRankSettings(scoring="loglik", candidates=5), users=2, progress=False)
    assert scored["method"] == "llmrank (loglik variant)"
    assert all(sorted(r["ranked"]) == sorted(r["candidates"]) for r in scored["records"])  # every one scored
    assert scored["metrics"]["valid_ratio"] == 1.0


def test_command_line(data, tiny, tmp_path):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["llmrank", "--data", DATA, "--llm", str(tiny), "--users", "2",
                                      "--set", "max_new_tokens=8", "--set", "candidates=5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["settings"]["candidates"] == 5 and "records" not in summary
    assert len(json.loads(out.read_text())["records"]) == 2
    bad = CliRunner().invoke(cli, ["llmrank", "--data", DATA, "--server", "http://127.0.0.1:9/v1"])
    assert bad.exit_code == 1 and "--server needs --model" in bad.output


def test_position_bias_study(data, tiny):
    result = CliRunner().invoke(cli, ["llmrank", "--data", DATA, "--llm", str(tiny), "--users", "2", "--set",
                                      "max_new_tokens=6", "--set", "candidates=5", "--positions", "0,4"])
    assert result.exit_code == 0, result.output
    study = json.loads(result.stdout)["metrics_by_target_position"]
    assert set(study) == {"0", "4"} and all("ndcg@10" in m for m in study.values())
