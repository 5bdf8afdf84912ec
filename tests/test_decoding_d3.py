"""D3 decoding: ghost tokens, the text-free assistant aggregated through the trie, alpha."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _decoding_testkit import PrefixHashStepper, forced_steps, make_tables, model_tokens, random_codes
from hypothesis import given, settings
from hypothesis import strategies as st

from semid.errors import ParameterError, UnknownItemError
from semid.gen.decoding import (
    DecodingConfig,
    PopularityScorer,
    assistant_prefix_sums,
    assistant_token_scores,
    constrained_beam_search,
    decode,
    node_log_mass,
)


def _all_prefixes(codes):
    return sorted({tuple(int(x) for x in c[:d] if x >= 0) for c in codes for d in range(codes.shape[1] + 1)})


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), variable=st.booleans(), n_items=st.integers(1, 30))
def test_assistant_aggregation_equals_brute_force_sums(seed, variable, n_items):
    codes = random_codes(seed, 3, 3, n_items, variable)
    trie, vocab, tables = make_tables(codes, 3)
    scores = torch.randn(2, len(codes), generator=torch.Generator().manual_seed(seed)) * 2
    probs = scores.double().softmax(1)
    sums = assistant_prefix_sums(tables, scores)
    for prefix in _all_prefixes(codes):
        under = [i for i, c in enumerate(codes) if tuple(int(x) for x in c[: len(prefix)]) == prefix]
        node = torch.full((2, 1), trie.node(prefix))
        expected = torch.log(probs[:, under].sum(1)).float()
        torch.testing.assert_close(node_log_mass(tables, sums, node)[:, 0], expected, rtol=0, atol=1e-5)
        tokens, token_scores = assistant_token_scores(tables, sums, node)
        for j, child_index in enumerate(trie.children(trie.node(prefix))[0].tolist()):
            child = prefix + (child_index,)
            below = [i for i in under if len(codes[i]) > len(prefix) and codes[i][len(prefix)] == child_index]
            conditional = torch.log(probs[:, below].sum(1) / probs[:, under].sum(1)).float()
            assert int(tokens[0, 0, j]) == 2 + vocab.token_id(len(prefix), child_index)
            torch.testing.assert_close(token_scores[:, 0, j], conditional, rtol=0, atol=1e-5, msg=str(child))


def _search(tables, stepper, users, **options):
    return constrained_beam_search(stepper, tables, users, **options)


def test_d3_with_alpha_zero_equals_beam_search():
    codes = random_codes(1, 3, 4, 60, False)
    trie, vocab, tables = make_tables(codes, 4)
    stepper = PrefixHashStepper(2 + vocab.n_tokens, seed=3)
    users = torch.arange(4)
    histories = [["x"]] * 4
    popularity = PopularityScorer([str(i) for i in range(len(codes))], [["0", "1", "1"]])
    beam = decode(stepper, tables, users, k=5, config=DecodingConfig("beam", num_beams=8))
    d3 = decode(stepper, tables, users, k=5, histories=histories, assistant=popularity,
                config=DecodingConfig("d3", num_beams=8, alpha=0.0, debias_ghost_tokens=False))
    assert torch.equal(beam[0], d3[0]) and torch.equal(beam[1], d3[1])
    # on a trie without forced steps the default D3 (ghost debiasing on) is beam search too
    full = np.array([[a, b] for a in range(3) for b in range(3)], dtype=np.int32)
    trie, vocab, tables = make_tables(full, 3)
    beam = decode(stepper, tables, users, k=4, config=DecodingConfig("beam", num_beams=4))
    d3 = decode(stepper, tables, users, k=4, config=DecodingConfig("d3", num_beams=4))
    assert torch.equal(beam[0], d3[0]) and torch.equal(beam[1], d3[1])


def test_ghost_tokens_are_forced_without_counting_in_the_score():
    # TIGER-like: the last level mostly has a single value (collision numbering)
    codes = np.array([[0, 0, 0], [0, 1, 0], [0, 1, 1], [1, 0, 0], [1, 2, 0], [2, 2, 0]], dtype=np.int32)
    trie, vocab, tables = make_tables(codes, 3)
    stepper = PrefixHashStepper(2 + vocab.n_tokens, seed=9)
    items, scores = _search(tables, stepper, torch.arange(3), num_beams=6, k=6, debias_ghost_tokens=True)
    for b in range(3):
        exact = []
        for code in codes:
            log_probs = stepper.sequence_log_probs(b, model_tokens(tables, vocab, code))
            exact.append(sum(lp for lp, forced in zip(log_probs, forced_steps(trie, tables, code)) if not forced))
        exact = torch.tensor(exact)
        assert items[b].tolist() == exact.topk(6).indices.tolist()
        torch.testing.assert_close(scores[b], exact.topk(6).values.float(), rtol=0, atol=1e-4)
    # with length normalization, forced steps do not count in the length either
    items, scores = _search(tables, stepper, torch.arange(1), num_beams=6, k=6, debias_ghost_tokens=True,
                            length_normalization=True)
    code = codes[int(items[0, 0])]
    forced = forced_steps(trie, tables, code)
    log_probs = stepper.sequence_log_probs(0, model_tokens(tables, vocab, code))
    kept = [lp for lp, f in zip(log_probs, forced) if not f]
    assert math.isclose(float(scores[0, 0]), sum(kept) / len(kept), abs_tol=1e-4)


@pytest.mark.parametrize("alpha", [0.3, 1.0])
@pytest.mark.parametrize("variable", [False, True])
def test_blended_scores_match_exhaustive_search(alpha, variable):
    codes = random_codes(4, 3, 4, 50, variable)
    trie, vocab, tables = make_tables(codes, 4)
    stepper = PrefixHashStepper(2 + vocab.n_tokens, seed=4)
    assistant = torch.randn(2, len(codes), generator=torch.Generator().manual_seed(1)) * 3
    items, scores = _search(tables, stepper, torch.arange(2), num_beams=len(codes), k=8,
                            assistant=assistant, alpha=alpha)
    item_log_probs = assistant.double().log_softmax(1)
    for b in range(2):
        model = torch.tensor([sum(stepper.sequence_log_probs(b, model_tokens(tables, vocab, c))) for c in codes])
        exact = ((1 - alpha) * model.double() + alpha * item_log_probs[b]).float()
        top = exact.topk(8)
        assert items[b].tolist() == top.indices.tolist()
        torch.testing.assert_close(scores[b], top.values, rtol=0, atol=1e-4)


def test_popularity_assistant_alone_ranks_by_training_counts():
    codes = random_codes(2, 2, 5, 20, False)
    trie, vocab, tables = make_tables(codes, 5)
    ids = [f"item{i}" for i in range(len(codes))]
    train = [["item3", "item3", "item7"], ["item3", "item1", "item7", "item3"], ["item5"]]
    scorer = PopularityScorer(ids, train)
    assert scorer(["a", "b"]).shape == (2, len(codes))
    items, _ = decode(PrefixHashStepper(2 + vocab.n_tokens), tables, torch.arange(1), k=4,
                      histories=[["item1"]], assistant=scorer,
                      config=DecodingConfig("d3", num_beams=len(codes), alpha=1.0))
    # counts + 1: item3 5, item7 3, item1 2, item5 2, every other item 1
    assert items[0, :2].tolist() == [3, 7]
    assert set(items[0, 2:4].tolist()) == {1, 5}
    with pytest.raises(UnknownItemError, match="nope"):
        PopularityScorer(ids, [["nope"]])
    with pytest.raises(ParameterError, match="smoothing"):
        PopularityScorer(ids, train, smoothing=0)


def test_decoding_config_is_validated():
    with pytest.raises(ParameterError, match="valid methods: beam, d3"):
        DecodingConfig("greedy")
    with pytest.raises(ParameterError, match="needs decoding='d3'"):
        DecodingConfig("beam", alpha=0.5)
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        DecodingConfig("d3", alpha=2.0)
    assert DecodingConfig("d3").ghost_debiased and not DecodingConfig("beam").ghost_debiased
    codes = np.array([[0, 1], [1, 0]], dtype=np.int32)
    trie, vocab, tables = make_tables(codes, 2)
    with pytest.raises(ParameterError, match="needs an assistant"):
        decode(PrefixHashStepper(6), tables, torch.arange(1), k=1, config=DecodingConfig("d3", alpha=0.5))
    with pytest.raises(ParameterError, match="shape"):
        _search(tables, PrefixHashStepper(6), torch.arange(1), num_beams=2, k=2,
                assistant=torch.zeros(1, 5), alpha=0.5)
