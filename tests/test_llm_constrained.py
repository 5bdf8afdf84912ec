"""Constrained generation over option texts: only options come out, scores are exact, variants run."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import semid
from _lcrec_tiny import build_tiny_model, dataset_texts
from semid.cli.main import cli
from semid.errors import ParameterError
from semid.gen.llm.constrained import OptionsLogitsProcessor, OptionTrie, generate_among
from semid.gen.llmrank import LLMRankSettings, llmrank_evaluate

DATA = "builtin:all_beauty_2023"


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset(DATA)


@pytest.fixture(scope="module")
def backend(tmp_path_factory, data):
    from semid.gen.llm.backend import LocalCausalLM

    return LocalCausalLM.load(build_tiny_model(tmp_path_factory.mktemp("tiny") / "m", dataset_texts(data)))


def test_the_trie_allows_exactly_the_continuations_of_options():
    trie = OptionTrie([[5, 6], [5, 7, 8], [9], [5, 6]])
    assert trie.options_at([5, 6]) == [0, 3] and trie.options_at([5]) == [] and trie.walk([6]) == -1
    processor = OptionsLogitsProcessor(trie, prompt_length=1, eos_token_id=0)
    rows = torch.tensor([[1, 1], [1, 5], [1, 9], [1, 4], [1, 0]])  # after the prompt: -, 5, 9, off-trie, EOS
    masked = processor(rows[:1, :1], torch.zeros(1, 10))
    assert torch.isfinite(masked[0]).nonzero().flatten().tolist() == [5, 9]
    allowed = [torch.isfinite(r).nonzero().flatten().tolist() for r in processor(rows, torch.zeros(5, 10))]
    assert allowed == [[0], [6, 7], [0], [0], [0]]  # a token 1 left the trie; 5 -> 6/7; 9 ends; dead rows EOS
    with pytest.raises(ParameterError, match="no token"):
        OptionTrie([[1], []])


def _exact(backend, prompt, option) -> float:
    """Summed log-probability of the option's tokens and then EOS, by one forward pass."""
    model, tok = backend.model, backend.tokenizer
    head = backend._prompt_ids(prompt)
    tail = tok(option, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([head + tail])).logits.float(), -1)[0]
    return float(sum(logp[len(head) - 1 + t, token] for t, token in enumerate(tail)))


def test_with_a_beam_per_option_every_option_comes_out_with_its_exact_score(backend, data):
    options = [" " + t for t in dataset_texts(data)[:6]]
    prompt = "The product I would like to buy next is:"
    ranked = generate_among(backend.model, backend.tokenizer, backend._prompt_ids(prompt), options, num_beams=6)
    assert sorted(j for j, _ in ranked) == list(range(6))  # no option pruned: beam search is exact here
    exact = {j: _exact(backend, prompt, options[j]) for j in range(6)}
    for j, score in ranked:
        assert score == pytest.approx(exact[j], abs=1e-3)
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    few = backend.rank_options(prompt, options, num_beams=2)
    assert len(few) == 2 and all(0 <= j < 6 for j, _ in few)


def test_llmrank_constrained_variant_ranks_only_candidates(backend, data):
    result = llmrank_evaluate(backend, data, LLMRankSettings(scoring="constrained", candidates=5), users=2,
                              progress=False)
    assert result["method"] == "llmrank (constrained variant)" and result["metrics"]["valid_ratio"] == 1.0
    for record in result["records"]:
        assert sorted(record["ranked"]) == sorted(record["candidates"])  # 5 beams reach all 5 candidates


def test_constrained_variants_refuse_a_server(data):
    from semid.gen.crs.zero_shot import crs_evaluate
    from semid.gen.llm.http_backend import OpenAICompatibleBackend

    server = OpenAICompatibleBackend("http://127.0.0.1:9/v1", "m")
    with pytest.raises(ParameterError, match="needs a local model"):
        llmrank_evaluate(server, data, LLMRankSettings(scoring="constrained", candidates=3), users=1, progress=False)
    with pytest.raises(ParameterError, match="needs a local model"):
        crs_evaluate(server, None, decoding="constrained")
