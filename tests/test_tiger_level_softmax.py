"""TIGER with one softmax per code level (``softmax="level"``): loss, decoding and diagnostics agree."""

from __future__ import annotations

import math

import pytest
import torch

import semid
from semid.evaluation import leave_one_out
from semid.gen.decoding import FastT5Stepper, T5Stepper
from semid.gen.decoding.level_softmax import block_depth, level_mask, restrict_to_level
from semid.gen.tiger.batches import collate, make_windows
from semid.gen.tiger.config import TigerConfig
from semid.gen.tiger.diagnostics import position_nll
from semid.gen.tiger.layout import EOS_ID, TokenLayout
from semid.gen.tiger.model import build_model, sequence_loss

TINY = dict(num_layers=2, num_decoder_layers=2, d_model=16, num_heads=2, d_kv=8, d_ff=32, dropout=0.0)


@pytest.fixture(scope="module")
def data():
    dataset = semid.load_dataset("builtin:all_beauty_2023")
    split = leave_one_out(dataset)
    tokenizer = semid.make("random").fit(dataset.items, split.train_sequences)
    return dataset, split, tokenizer


def test_block_depth_restarts_at_every_target():
    block = torch.tensor([[0, 0, 0, 1, 1, 1, -1], [0, 0, 0, 0, -1, -1, -1]])
    assert block_depth(block)[:, :4].tolist() == [[0, 1, 2, 0], [0, 1, 2, 3]]
    assert block_depth(block)[0, 3:6].tolist() == [0, 1, 2]


def test_level_mask_rows_are_the_levels_token_ranges(data):
    _, _, tokenizer = data
    layout = TokenLayout(tokenizer, user_buckets=5)
    config = build_model(TigerConfig(**TINY, softmax="level"), layout).config
    mask = level_mask(config, config.vocab_size)
    bounds = layout.level_bounds
    assert mask.shape == (len(bounds) - 1, config.vocab_size)
    for depth in range(len(bounds) - 1):
        assert mask[depth].nonzero().flatten().tolist() == list(range(bounds[depth], bounds[depth + 1]))
    assert not mask[:, layout.user_offset :].any()  # user tokens are never outputs
    assert level_mask(build_model(TigerConfig(**TINY), layout).config, config.vocab_size) is None


def test_level_loss_is_cross_entropy_over_the_targets_level(data):
    _, split, tokenizer = data
    layout = TokenLayout(tokenizer, user_buckets=0)
    model = build_model(TigerConfig(**TINY, softmax="level", recipe="packed"), layout).eval()
    batch = collate(make_windows(split.train_sequences[:30], split.train_users[:30], layout, max_history=4,
                                 recipe="packed"), layout)
    with torch.no_grad():
        loss = float(sequence_loss(model, batch))
        # the same batch under the whole-vocabulary softmax, then renormalised by hand per level
        model.config.tiger_softmax = "vocab"
        full = float(sequence_loss(model, batch))
        model.config.tiger_softmax = "level"
    # hand computation: logits of every labelled token, softmax over its level's range only
    from semid.gen.tiger.model import _additive, encoder_mask, encoder_segments

    segments = encoder_segments(batch["encoder_ids"], model.config)
    with torch.no_grad():
        states = model.encoder(input_ids=batch["encoder_ids"],
                               attention_mask=encoder_mask(segments, block_causal=True, dtype=torch.float32)).last_hidden_state
        block, history = batch["decoder_block"], batch["decoder_history"]
        pos = torch.arange(block.shape[1])
        self_allowed = (block[:, :, None] == block[:, None, :]) & (pos[None, None, :] <= pos[None, :, None]) & (block[:, None, :] >= 0)
        cross = (segments[:, None, :] >= 0) & (segments[:, None, :] <= history[:, :, None])
        logits = model(encoder_outputs=(states,), attention_mask=_additive(cross, torch.float32),
                       decoder_input_ids=batch["decoder_ids"], decoder_attention_mask=_additive(self_allowed, torch.float32)).logits
    bounds, total, n = layout.level_bounds, 0.0, 0
    depth = block_depth(block)
    for r, t in (batch["labels"] != -100).nonzero().tolist():
        lo, hi = bounds[depth[r, t]], bounds[depth[r, t] + 1]
        label = int(batch["labels"][r, t])
        assert lo <= label < hi
        total -= float(torch.log_softmax(logits[r, t, lo:hi], -1)[label - lo])
        n += 1
    assert loss == pytest.approx(total / n, rel=1e-5)
    assert loss < full  # the level's mass is renormalised: never above the whole-vocabulary loss


@pytest.mark.parametrize("stepper_class", [T5Stepper, FastT5Stepper])
def test_steppers_normalise_over_the_level_of_each_depth(data, stepper_class):
    _, split, tokenizer = data
    layout = TokenLayout(tokenizer, user_buckets=0)
    model = build_model(TigerConfig(**TINY, softmax="level"), layout).eval()
    ids = torch.from_numpy(layout.encoder_ids(layout.positions(split.train_sequences[0][:3]), None)).unsqueeze(0)
    stepper = stepper_class(model)
    log_probs, state = stepper.start(ids, num_beams=2)
    bounds = layout.level_bounds
    for depth in range(len(bounds) - 1):
        mass = log_probs[:, bounds[depth] : bounds[depth + 1]].exp().sum(-1)
        assert torch.allclose(mass, torch.ones_like(mass), atol=1e-5)
        assert bool((log_probs[:, : bounds[depth]].exp() < 1e-30).all())
        if depth < len(bounds) - 2:
            tokens = torch.full((2,), bounds[depth], dtype=torch.long)
            log_probs, state = stepper.step(state, tokens, torch.tensor([0, 1]))
    assert EOS_ID not in range(bounds[0], bounds[-1])


def test_fast_stepper_matches_reference_under_level_softmax(data):
    _, split, tokenizer = data
    layout = TokenLayout(tokenizer, user_buckets=0)
    model = build_model(TigerConfig(**TINY, softmax="level", seed=3), layout).eval()
    ids = torch.from_numpy(layout.encoder_ids(layout.positions(split.train_sequences[1][:4]), None)).unsqueeze(0)
    reference, fast = T5Stepper(model), FastT5Stepper(model)
    (a, sa), (b, sb) = reference.start(ids, 1), fast.start(ids, 1)
    token = torch.tensor([layout.level_bounds[0] + 1])
    for _ in range(len(layout.level_bounds) - 2):
        finite = a > -math.inf
        assert torch.allclose(a[finite], b[finite], atol=1e-4)
        (a, sa), (b, sb) = reference.step(sa, token, torch.tensor([0])), fast.step(sb, token, torch.tensor([0]))
        token = token + (layout.level_bounds[1] - layout.level_bounds[0])


def test_position_nll_uses_the_models_softmax(data):
    _, split, tokenizer = data
    layout = TokenLayout(tokenizer, user_buckets=0)
    model = build_model(TigerConfig(**TINY, softmax="level"), layout)
    cases = split.valid[:20]
    level = position_nll(model, layout, cases, max_history=4)
    model.config.tiger_softmax = "vocab"
    vocab = position_nll(model, layout, cases, max_history=4)
    model.config.tiger_softmax = "level"
    assert all(a < b for a, b in zip(level, vocab))
    sizes = [b - a for a, b in zip(layout.level_bounds, layout.level_bounds[1:])]
    # an untrained model is near uniform over its level
    assert level[0] == pytest.approx(math.log(sizes[0]), rel=0.2)


def test_restrict_leaves_whole_vocabulary_models_alone():
    logits = torch.randn(2, 3, 9)
    assert restrict_to_level(logits, 0, None) is logits


@pytest.mark.parametrize("softmax", ["vocab", "level"])
def test_bf16_loss_keeps_float32_logits_and_stays_close(data, softmax):
    """Under precision=bf16 the output layer still computes in float32 (bf16 would round logits)."""
    from semid.gen.tiger.train import _LossModule

    _, split, tokenizer = data
    layout = TokenLayout(tokenizer, user_buckets=0)
    model = build_model(TigerConfig(**TINY, softmax=softmax, recipe="packed"), layout).eval()
    batch = collate(make_windows(split.train_sequences[:30], split.train_users[:30], layout, max_history=4,
                                 recipe="packed"), layout)
    exact = _LossModule(model, "fp32")(batch)
    seen = []
    handle = model.lm_head.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    mixed = _LossModule(model, "bf16")(batch)
    handle.remove()
    assert seen == [torch.float32] and mixed.dtype == torch.float32
    assert abs(float(mixed) - float(exact)) < 0.01 * float(exact)
    assert float(_LossModule(model, "fp32")(batch)) == pytest.approx(float(exact), abs=1e-6)  # the wrap is inert in fp32
