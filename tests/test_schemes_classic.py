"""Behaviour specific to each classic scheme (beyond the shared conformance checks)."""

from __future__ import annotations

import numpy as np
import pytest

import semid
from semid.data import Dataset, ItemTable, Sequences
from semid.errors import DataError, MissingFieldError
from semid.evaluation import leave_one_out


def _toy() -> Dataset:
    items = ItemTable(
        [
            {"item_id": "lip1", "title": "Red Lipstick Matte", "categories": ["Beauty", "Makeup", "Lips"]},
            {"item_id": "lip2", "title": "Pink Lipstick", "categories": ["Beauty", "Makeup", "Lips"]},
            {"item_id": "eye1", "title": "Black Eyeliner", "categories": ["Beauty", "Makeup", "Eyes"]},
            {"item_id": "sham", "title": "Mild Shampoo", "categories": ["Beauty", "Hair"]},
            {"item_id": "sham2", "title": "Mild Shampoo", "categories": ["Beauty", "Hair"]},
            {"item_id": "held", "title": "Held Out Serum", "categories": ["Beauty", "Skin"]},
        ]
    )
    sequences = Sequences(
        ["u1", "u2", "u3"],
        [["sham", "lip1", "lip2", "eye1", "held"], ["lip2", "lip1", "sham2", "held"], ["eye1", "sham", "lip1", "held"]],
    )
    return Dataset("toy", items, sequences)


@pytest.fixture
def toy():
    return _toy()


def test_sequential_numbers_training_items_first(toy):
    split = leave_one_out(toy)
    tok = semid.make("sequential", base=2).fit(toy.items, split.train_sequences)
    number = {i: int("".join(map(str, tok.encode(i))), 2) for i in toy.items.item_ids}
    # u1's training part is sham, lip1, lip2; u2's is lip2, lip1; u3's is eye1, sham.
    assert [number[i] for i in ("sham", "lip1", "lip2", "eye1")] == [0, 1, 2, 3]
    # Items never in training sequences come last, in dataset order: held-out data cannot shape ids.
    assert number["sham2"] == 4 and number["held"] == 5
    long_first = semid.make("sequential", base=2, order="short2long").fit(toy.items, split.train_sequences)
    assert long_first.encode("lip2") != tok.encode("lip2") or long_first.encode("eye1") != tok.encode("eye1")


def test_sequential_needs_sequences(toy):
    with pytest.raises(DataError, match="needs training sequences"):
        semid.make("sequential").fit(toy.items)


def test_random_and_independent_depend_on_seed_only(toy):
    a = semid.make("random", seed=1).fit(toy.items).encode_batch(toy.items.item_ids)
    b = semid.make("random", seed=1).fit(toy.items).encode_batch(toy.items.item_ids)
    c = semid.make("random", seed=2).fit(toy.items).encode_batch(toy.items.item_ids)
    assert a == b and a != c
    iid = semid.make("independent").fit(toy.items)
    assert sorted(c[0] for c in iid.encode_batch(toy.items.item_ids)) == list(range(6))


def test_title_codes_duplicates_and_cold_start(toy):
    tok = semid.make("title").fit(toy.items)
    words = tok.vocab.labels[0]
    assert [words[t] for t in tok.encode("lip1")] == ["red", "lipstick", "matte"]
    # Identical titles get '#k' tokens numbering them.
    assert [words[t] for t in tok.encode("sham")] == ["mild", "shampoo", "#0"]
    assert [words[t] for t in tok.encode("sham2")] == ["mild", "shampoo", "#1"]
    assert tok.collisions_resolved_ == 1
    new = tok.encode_new({"title": "Pink Lipstick Matte"})
    assert [words[t] for t in new] == ["pink", "lipstick", "matte"]
    with pytest.raises(DataError, match="not in the word table"):
        tok.encode_new({"title": "Glitter Nail Polish"})


def test_title_missing_field_policy(toy):
    """Untitled items are titled by their id by default; on_missing=error refuses them and says how to allow."""
    toy.items.records[0]["title"] = ""
    with pytest.raises(MissingFieldError, match=r"needs field 'title'.*--set on_missing=item_id"):
        semid.make("title", on_missing="error").fit(toy.items)
    tok = semid.make("title").fit(toy.items)
    assert [tok.vocab.labels[0][t] for t in tok.encode("lip1")] == ["lip1"]


def test_category_path_tokens_and_cold_start(toy):
    tok = semid.make("category").fit(toy.items)
    assert tok.vocab.label(tok.encode("lip2")) == ["Beauty", "Makeup", "Lips", "<d_1>"]
    labels = tok.vocab.label(tok.encode("sham"))
    assert labels[:3] == ["Beauty", "Hair", "<pad>"]
    assert tok.encode("lip1")[:3] == tok.encode("lip2")[:3] and tok.encode("lip1")[3] != tok.encode("lip2")[3]
    assert tok.collisions_resolved_ == 2  # lip2 shares lip1's leaf, sham2 shares sham's
    new = tok.encode_new({"categories": ["Beauty", "Makeup", "Lips"]})
    assert new[:3] == tok.encode("lip1")[:3] and new[3] == 2
    with pytest.raises(DataError, match="not in the fitted tree"):
        tok.encode_new({"categories": ["Beauty", "Garden"]})


def test_category_accepts_comma_separated_strings(toy):
    for record in toy.items.records:
        record["categories"] = ", ".join(record["categories"])
    tok = semid.make("category").fit(toy.items)
    assert tok.vocab.label(tok.encode("eye1"))[:3] == ["Beauty", "Makeup", "Eyes"]


def test_collaborative_uses_training_cooccurrence_only(beauty_small):
    split = leave_one_out(beauty_small)
    tok = semid.make("collaborative", n_clusters=4, max_group_size=40).fit(beauty_small.items, split.train_sequences)
    train_items = {i for s in split.train_sequences for i in s}
    cold = [i for i in beauty_small.items.item_ids if i not in train_items]
    assert cold, "the subset should have items seen only in validation/test"
    cold_token = 4  # the extra top-level cluster after the 4 regular ones
    assert all(tok.encode(i)[0] == cold_token for i in cold)
    assert all(tok.encode(i)[0] < cold_token for i in train_items)
    assert tok.info_["cold_items"] == len(cold)
    codes = tok.codes
    lengths = (codes >= 0).sum(axis=1)
    last = codes[np.arange(len(codes)), lengths - 1]
    assert (last >= 4).all(), "the last token is always a within-group index token"


def test_collaborative_groups_follow_cooccurrence():
    """Two disjoint communities of items must land in different top-level clusters."""
    items = ItemTable([{"item_id": f"i{k}"} for k in range(40)])
    rng = np.random.default_rng(0)
    seqs = [[f"i{k}" for k in rng.choice(20, 5, replace=False) + 20 * (u % 2)] for u in range(200)]
    tok = semid.make("collaborative", n_clusters=2, max_group_size=20).fit(items, seqs)
    first = {tok.encode(f"i{k}")[0] for k in range(20)}, {tok.encode(f"i{k}")[0] for k in range(20, 40)}
    assert len(first[0]) == 1 and len(first[1]) == 1 and first[0] != first[1]


def test_hybrid_is_prefix_grouping_then_suffix_code(beauty_small):
    split = leave_one_out(beauty_small)
    params = {"n_clusters": 4, "max_group_size": 40}
    cid = semid.make("collaborative", **params).fit(beauty_small.items, split.train_sequences)
    hybrid = semid.make("collaborative+independent", prefix=params).fit(beauty_small.items, split.train_sequences)
    iid = semid.make("independent").fit(beauty_small.items)
    depth = hybrid.info_["prefix_levels"]
    for item in beauty_small.items.item_ids[:50]:
        code = hybrid.encode(item)
        assert code[depth:] == iid.encode(item)
        cluster_path = cid.encode(item)[:-1]
        assert code[: len(cluster_path)] == cluster_path
    assert hybrid.vocab.n_levels == depth + 1


def test_hybrid_params_from_command_line_strings():
    cls = semid.registry.scheme_class("category+collaborative")
    parsed = cls.parse_params({"suffix.n_clusters": "7", "seed": "3", "prefix.max_depth": "2"})
    assert parsed == {"prefix": {"max_depth": 2}, "suffix": {"n_clusters": 7}, "seed": 3}
