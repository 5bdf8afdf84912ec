"""Decoding over indexes fitted on real data (Amazon Beauty 2014 subset, All_Beauty 2023)."""

from __future__ import annotations

import pytest
import torch
from _decoding_testkit import PrefixHashStepper

import semid
from semid.evaluation import leave_one_out
from semid.gen.decoding import DecodingConfig, PopularityScorer, TrieTables, decode


@pytest.fixture(scope="module")
def real_indexes(beauty_small, all_beauty):
    """SemID category codes (fixed length) and variable-length, prefix-free collaborative codes (CID)."""
    category = semid.make("category").fit(beauty_small.items, leave_one_out(beauty_small).train_sequences)
    train = leave_one_out(all_beauty).train_sequences
    collaborative = semid.make("collaborative").fit(all_beauty.items, train)
    return [(category, leave_one_out(beauty_small).train_sequences), (collaborative, train)]


def test_every_code_of_a_real_index_maps_back_to_its_item(real_indexes):
    for tokenizer, _ in real_indexes:
        tables = TrieTables.from_tokenizer(tokenizer)
        assert tables.uses_eos == (not tokenizer.trie.is_prefix_free)
        rows = []
        for code in tokenizer.codes.tolist():
            tokens = [2 + tokenizer.vocab.token_id(level, i) for level, i in enumerate(code) if i >= 0]
            rows.append(tokens + [tables.eos_token_id] * (tables.max_steps - len(tokens)))
        found = tables.item_of_sequences(torch.tensor(rows))
        assert found.tolist() == list(range(len(tokenizer.item_ids)))


@pytest.mark.parametrize("method", ["beam", "d3"])
def test_decoding_a_real_index_returns_distinct_valid_items(real_indexes, method):
    for tokenizer, train in real_indexes:
        tables = TrieTables.from_tokenizer(tokenizer)
        stepper = PrefixHashStepper(2 + tokenizer.vocab.n_tokens + 1, seed=1)
        histories = [seq[:-1] for seq in train[:6]]
        config = DecodingConfig(method, num_beams=20, alpha=0.3 if method == "d3" else 0.0)
        items, scores = decode(stepper, tables, torch.arange(6), k=20, config=config, histories=histories,
                               assistant=PopularityScorer(tokenizer.item_ids, train))
        assert (items >= 0).all() and torch.isfinite(scores).all()
        assert all(len(set(row)) == 20 for row in items.tolist())
