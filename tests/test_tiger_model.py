"""TIGER model plumbing: token layout, windows, and the packed == per-prefix equivalence."""

from __future__ import annotations

import pytest
import torch

import semid
from semid.errors import ParameterError, UnknownItemError
from semid.evaluation import leave_one_out
from semid.gen.tiger.batches import collate, count_targets, make_windows
from semid.gen.tiger.config import TigerConfig
from semid.gen.tiger.layout import EOS_ID, TokenLayout
from semid.gen.tiger.model import build_model, encoder_segments, sequence_loss

TINY = dict(num_layers=2, num_decoder_layers=2, d_model=16, num_heads=2, d_kv=8, d_ff=32, dropout=0.0,
            user_buckets=7)


@pytest.fixture(scope="module")
def data():
    dataset = semid.load_dataset("builtin:all_beauty_2023")
    return dataset, leave_one_out(dataset)


@pytest.fixture(scope="module", params=["random", "title"])
def tokenizer(request, data):
    dataset, split = data
    params = {"max_words": 3} if request.param == "title" else {}
    return semid.make(request.param, **params).fit(dataset.items, split.train_sequences)


def test_layout_token_ids_follow_the_fixed_vocabulary(tokenizer):
    layout = TokenLayout(tokenizer, user_buckets=7)
    vocab = tokenizer.vocab
    first = tokenizer.encode(tokenizer.item_ids[0])
    expected = [2 + vocab.token_id(level, index) for level, index in enumerate(first)]
    if not tokenizer.trie.fixed_length:
        expected.append(EOS_ID)
    assert layout.item_tokens[0].tolist() == expected
    assert layout.user_offset == 2 + vocab.n_tokens
    assert layout.vocab_size == layout.user_offset + 7
    token = layout.user_token("some-user")
    assert layout.user_offset <= token < layout.vocab_size
    assert token == TokenLayout(tokenizer, user_buckets=7).user_token("some-user")  # stable hash


def test_unknown_history_item_is_named(tokenizer):
    layout = TokenLayout(tokenizer, user_buckets=0)
    with pytest.raises(UnknownItemError, match="NOT-AN-ITEM"):
        layout.positions(["NOT-AN-ITEM"])


def test_windows_cover_every_target_once(tokenizer, data):
    _, split = data
    layout = TokenLayout(tokenizer, user_buckets=7)
    packed = make_windows(split.train_sequences, split.train_users, layout, max_history=4, recipe="packed")
    prefix = make_windows(split.train_sequences, split.train_users, layout, max_history=4, recipe="per_prefix")
    expected = sum(max(len(s) - 1, 0) for s in split.train_sequences)
    assert count_targets(packed) == count_targets(prefix) == expected
    assert len(packed) < len(prefix)
    for window in packed:
        assert len(window.items) <= 4
        assert all(1 <= visible <= len(window.items) for _, visible in window.targets)


def test_segments_mark_user_items_and_padding(tokenizer):
    layout = TokenLayout(tokenizer, user_buckets=7)
    model = build_model(TigerConfig(**TINY), layout)
    ids = torch.from_numpy(layout.encoder_ids([0, 1], "u"))
    row = torch.cat([ids, torch.zeros(3, dtype=torch.long)])[None]
    segments = encoder_segments(row, model.config)[0].tolist()
    len0 = len(layout.item_tokens[0])
    assert segments[0] == 0
    assert segments[1 : 1 + len0] == [1] * len0
    assert segments[1 + len0 : len(ids)] == [2] * len(layout.item_tokens[1])
    assert segments[len(ids) :] == [-1, -1, -1]


def test_block_causal_encoder_ignores_later_items(tokenizer):
    """States of the first items do not change when later items are appended (2-d mask path)."""
    layout = TokenLayout(tokenizer, user_buckets=7)
    model = build_model(TigerConfig(**TINY, recipe="packed"), layout).eval()
    short = torch.from_numpy(layout.encoder_ids([3, 5], "u"))[None]
    long = torch.from_numpy(layout.encoder_ids([3, 5, 8, 13], "u"))[None]
    with torch.no_grad():
        a = model.get_encoder()(input_ids=short, attention_mask=torch.ones_like(short)).last_hidden_state
        b = model.get_encoder()(input_ids=long, attention_mask=torch.ones_like(long)).last_hidden_state
    torch.testing.assert_close(a[0], b[0, : short.shape[1]], rtol=1e-5, atol=1e-5)


def test_packed_loss_equals_per_prefix_loss(tokenizer, data):
    """The core claim of the packed recipe: same per-token losses, summed, as per-prefix examples."""
    _, split = data
    layout = TokenLayout(tokenizer, user_buckets=7)
    model = build_model(TigerConfig(**TINY, max_history=4, recipe="packed"), layout).eval()
    seqs, users = split.train_sequences[:40], split.train_users[:40]
    totals = []
    for recipe in ("packed", "per_prefix"):
        windows = make_windows(seqs, users, layout, max_history=4, recipe=recipe)
        batch = collate(windows, layout)
        n_tokens = int((batch["labels"] != -100).sum())
        with torch.no_grad():
            totals.append((float(sequence_loss(model, batch)) * n_tokens, n_tokens))
    assert totals[0][1] == totals[1][1]
    assert totals[0][0] == pytest.approx(totals[1][0], rel=1e-5)


def test_hybrid_windows_give_each_users_latest_target_a_bidirectional_window(tokenizer, data):
    _, split = data
    layout = TokenLayout(tokenizer, user_buckets=7)
    hybrid = make_windows(split.train_sequences, split.train_users, layout, max_history=4, recipe="hybrid",
                          encoder_attention="full")
    expected = sum(max(len(s) - 1, 0) for s in split.train_sequences)
    assert count_targets(hybrid) == expected  # every target once per epoch, as in the other recipes
    for window in hybrid:
        assert window.block_causal == (len(window.targets) > 1)
    latest = {}
    for window in hybrid:  # windows of a user come oldest first; the last one holds the latest target
        latest[window.user_id] = window
    for user, sequence in zip(split.train_users, split.train_sequences):
        if len(sequence) < 2:
            continue
        window = latest[user]
        assert not window.block_causal
        assert window.targets == ((layout.positions(sequence)[-1], len(window.items)),)


def test_hybrid_loss_mixes_block_causal_and_bidirectional_rows_exactly(tokenizer, data):
    """A hybrid batch's loss = block-causal per-prefix losses + bidirectional per-prefix losses."""
    _, split = data
    layout = TokenLayout(tokenizer, user_buckets=7)
    seqs, users = split.train_sequences[:40], split.train_users[:40]
    full = build_model(TigerConfig(**TINY, max_history=4, recipe="hybrid", encoder_attention="full"), layout).eval()
    windows = make_windows(seqs, users, layout, max_history=4, recipe="hybrid", encoder_attention="full")
    assert {w.block_causal for w in windows} == {True, False}

    def total(batch):
        n_tokens = int((batch["labels"] != -100).sum())
        with torch.no_grad():
            return float(sequence_loss(full, batch)) * n_tokens

    mixed = total(collate(windows, layout))
    separate = 0.0
    for window in windows:  # each target alone, encoded with its window's attention
        for target in window.targets:
            single = type(window)(window.user_id, window.items[: target[1]], (target,), window.block_causal)
            separate += total(collate([single], layout))
    assert mixed == pytest.approx(separate, rel=1e-5)


def test_full_attention_is_refused_for_the_packed_recipe():
    with pytest.raises(ParameterError, match="block_causal"):
        TigerConfig(recipe="packed", encoder_attention="full")
    with pytest.raises(ParameterError, match="hybrid.*encoder_attention='full'"):
        TigerConfig(recipe="hybrid", encoder_attention="block_causal")
    assert TigerConfig(recipe="packed").attention == "block_causal"  # auto follows the recipe
    assert TigerConfig(recipe="per_prefix").attention == TigerConfig().attention == "full"
    with pytest.raises(ParameterError, match="unknown setting 'layers'"):
        TigerConfig().with_assignments({"layers": "3"})
    with pytest.raises(ParameterError, match="must be int"):
        TigerConfig().with_assignments({"d_model": "big"})
    assert TigerConfig().with_assignments({"d_model": "64", "lr": "0.01"}).d_model == 64
