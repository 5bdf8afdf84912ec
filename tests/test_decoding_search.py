"""Constrained beam search on random tries with a deterministic fake model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _decoding_testkit import PrefixHashStepper, make_tables, model_tokens, random_codes
from hypothesis import given, settings
from hypothesis import strategies as st

from semid.errors import ParameterError
from semid.gen.decoding import TrieTables, constrained_beam_search
from semid.trie import CodeTrie
from semid.vocab import CodeVocab


def exhaustive(stepper, tables, vocab, codes, user):
    """Every item's exact score (summed log-probs, EOS included when used)."""
    return torch.tensor([sum(stepper.sequence_log_probs(user, model_tokens(tables, vocab, c))) for c in codes])


trie_params = dict(
    seed=st.integers(0, 10**6),
    n_levels=st.integers(1, 4),
    size=st.integers(1, 6),
    n_items=st.integers(1, 40),
    variable=st.booleans(),
    k=st.integers(1, 12),
)


@settings(max_examples=40, deadline=None)
@given(**trie_params, extra_beams=st.integers(0, 6))
def test_every_result_is_a_distinct_valid_item(seed, n_levels, size, n_items, variable, k, extra_beams):
    codes = random_codes(seed, n_levels, size, n_items, variable)
    trie, vocab, tables = make_tables(codes, size)
    stepper = PrefixHashStepper(2 + vocab.n_tokens + 3, seed=seed)
    users = torch.arange(3)
    items, scores = constrained_beam_search(stepper, tables, users, num_beams=k + extra_beams, k=k)
    assert items.shape == scores.shape == (3, k)
    for b in range(3):
        found = items[b][items[b] >= 0].tolist()
        assert len(found) == len(set(found)) == min(k, len(codes))
        assert all(0 <= i < len(codes) for i in found)
        assert torch.all(items[b, len(found):] == -1) and torch.all(torch.isinf(scores[b, len(found):]))
        assert torch.all(scores[b, :-1] >= scores[b, 1:])
        # each score is the exact sequence score of the returned item's code
        exact = exhaustive(stepper, tables, vocab, codes[found], b)
        torch.testing.assert_close(scores[b, : len(found)], exact.float(), rtol=0, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(**trie_params)
def test_enough_beams_equals_exhaustive_search(seed, n_levels, size, n_items, variable, k):
    codes = random_codes(seed, n_levels, size, n_items, variable)
    trie, vocab, tables = make_tables(codes, size)
    stepper = PrefixHashStepper(2 + vocab.n_tokens, seed=seed + 1)
    k = min(k, len(codes))
    items, scores = constrained_beam_search(stepper, tables, torch.arange(2), num_beams=len(codes), k=k)
    for b in range(2):
        exact = exhaustive(stepper, tables, vocab, codes, b)
        top = exact.topk(k)
        torch.testing.assert_close(scores[b], top.values.float(), rtol=0, atol=1e-4)
        assert set(items[b].tolist()) == set(top.indices.tolist()) or _ties(exact, k)


@settings(max_examples=30, deadline=None)
@given(**trie_params, extra_beams=st.integers(0, 4), use_eos=st.booleans())
def test_static_shapes_give_the_same_result(seed, n_levels, size, n_items, variable, k, extra_beams, use_eos):
    codes = random_codes(seed, n_levels, size, n_items, variable)
    trie, vocab, tables = make_tables(codes, size, require_eos=True if use_eos else None)
    stepper = PrefixHashStepper(2 + vocab.n_tokens, seed=seed)
    users = torch.arange(3)
    adaptive = constrained_beam_search(stepper, tables, users, num_beams=k + extra_beams, k=k)
    static = constrained_beam_search(stepper, tables, users, num_beams=k + extra_beams, k=k, static_shapes=True)
    torch.testing.assert_close(static[1], adaptive[1], rtol=0, atol=1e-6)
    assert torch.equal(static[0], adaptive[0])


def test_static_width_is_the_level_size():
    codes = random_codes(3, 3, 5, 20, False)
    trie, vocab, tables = make_tables(codes, 5)
    assert tables.level_sizes == (5, 5, 5) and tables.level_width(3) == 1
    tok, child = tables.allowed(torch.zeros(2, 1, dtype=torch.long), width=tables.level_width(0))
    assert tok.shape == child.shape == (2, 1, 5)
    assert set(tok[0, 0][tok[0, 0] >= 0].tolist()) == {2 + int(c) for c in set(codes[:, 0].tolist())}


def _ties(values, k):
    ordered = values.sort(descending=True).values
    return k < len(values) and math.isclose(float(ordered[k - 1]), float(ordered[k]), abs_tol=1e-5)


def test_k_larger_than_catalogue_returns_all_items_then_padding():
    codes = np.array([[0, 1], [1, 0], [1, 2], [2, 2]], dtype=np.int32)
    trie, vocab, tables = make_tables(codes, 3)
    items, scores = constrained_beam_search(PrefixHashStepper(2 + 9), tables, torch.arange(2), num_beams=7, k=7)
    for b in range(2):
        assert sorted(items[b, :4].tolist()) == [0, 1, 2, 3]
        assert items[b, 4:].tolist() == [-1, -1, -1]
        assert torch.isinf(scores[b, 4:]).all() and torch.isfinite(scores[b, :4]).all()


def test_eos_is_used_exactly_when_a_code_is_a_prefix_of_another():
    fixed = make_tables(np.array([[0, 1], [1, 0]], dtype=np.int32), 2)[2]
    assert not fixed.uses_eos and fixed.max_steps == 2
    nested_codes = np.array([[0, -1], [0, 1], [1, 1]], dtype=np.int32)
    trie, vocab, nested = make_tables(nested_codes, 2)
    assert nested.uses_eos and nested.max_steps == 3
    # EOS allowed exactly at nodes where a code ends
    terminal = torch.from_numpy(trie.terminal_item >= 0)
    assert torch.equal(nested.eos_allowed, terminal)
    # a prefix-free variable-length trie needs no EOS, unless asked
    free = make_tables(np.array([[0, -1], [1, 1]], dtype=np.int32), 2)[2]
    assert not free.uses_eos
    assert make_tables(np.array([[0, -1], [1, 1]], dtype=np.int32), 2, require_eos=True)[2].uses_eos
    with pytest.raises(ParameterError, match="prefix of another"):
        make_tables(nested_codes, 2, require_eos=False)


def test_eos_scores_count_and_short_codes_compete():
    # "0" is a complete code and a prefix of "0 1": its score must include log p(EOS | 0)
    codes = np.array([[0, -1], [0, 1], [1, 1]], dtype=np.int32)
    trie, vocab, tables = make_tables(codes, 2)
    stepper = PrefixHashStepper(2 + vocab.n_tokens, seed=5)
    items, scores = constrained_beam_search(stepper, tables, torch.arange(4), num_beams=3, k=3)
    for b in range(4):
        exact = exhaustive(stepper, tables, vocab, codes, b)
        assert items[b].tolist() == exact.topk(3).indices.tolist()


def test_sequences_map_back_to_items():
    codes = np.array([[0, -1], [0, 1], [1, 1]], dtype=np.int32)
    trie, vocab, tables = make_tables(codes, 2)
    eos = tables.eos_token_id
    a0, b1, a1 = 2 + vocab.token_id(0, 0), 2 + vocab.token_id(1, 1), 2 + vocab.token_id(0, 1)
    seqs = torch.tensor([[a0, eos, 0], [a0, b1, eos], [a1, b1, eos], [a1, eos, 0], [a0, b1, 0], [b1, a0, eos]])
    assert tables.item_of_sequences(seqs).tolist() == [0, 1, 2, -1, -1, -1]


def test_tables_are_cached_per_trie_and_options():
    codes = np.array([[0, 1], [1, 0]], dtype=np.int32)
    trie, vocab = CodeTrie(codes), CodeVocab([2, 2])
    first = TrieTables.build(trie, vocab)
    assert TrieTables.build(trie, vocab) is first
    assert TrieTables.build(trie, vocab, require_eos=True) is not first


def test_bad_options_are_rejected():
    codes = np.array([[0, 1], [1, 0]], dtype=np.int32)
    trie, vocab, tables = make_tables(codes, 2)
    stepper = PrefixHashStepper(6)
    with pytest.raises(ParameterError, match="num_beams must be >= k"):
        constrained_beam_search(stepper, tables, torch.arange(1), num_beams=2, k=3)
    with pytest.raises(ParameterError, match="alpha"):
        constrained_beam_search(stepper, tables, torch.arange(1), num_beams=2, k=2, alpha=1.5)
    with pytest.raises(ParameterError, match="model token ids up to"):
        constrained_beam_search(PrefixHashStepper(4), tables, torch.arange(1), num_beams=2, k=2)
    with pytest.raises(ParameterError, match="one model token id per vocab token"):
        TrieTables.build(trie, vocab, token_ids=[5, 6, 7], cache=False)
    with pytest.raises(ParameterError, match="also the model id of a code token"):
        TrieTables.build(trie, vocab, token_ids=[5, 6, 7, 8], eos_token_id=6, cache=False)
