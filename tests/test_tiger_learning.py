"""TIGER learns: tests that fail on a model that ignores its encoder (issue 10).

Real data (the embedded All_Beauty dataset), real transformers T5, fixed step
counts, no timing. The defect these guard against: under transformers 5 the
block-causal encoder was initialised with N(0, 1) weights (T5 expects
N(0, (d_model d_kv)^-1/2) for attention queries, ...), every encoder attention
saturated, and the decoder learned to recommend the same items to everybody.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from transformers import T5ForConditionalGeneration

import semid
from semid.evaluation import leave_one_out
from semid.evaluation.split import EvalCase
from semid.gen.tiger.batches import collate, length_bucketed_batches, make_windows
from semid.gen.tiger.config import TigerConfig
from semid.gen.collapse import list_diversity
from semid.gen.tiger.layout import PAD_ID, TokenLayout
from semid.gen.tiger.model import build_model, sequence_loss, t5_config
from semid.gen.tiger.recommender import TigerRecommender

EPOCHS_SAME_LOSS = 20
SMALL = dict(num_layers=2, num_decoder_layers=2, d_model=64, num_heads=4, d_kv=16, d_ff=256, dropout=0.1)


def test_every_weight_starts_with_t5_initialisation():
    """Each parameter's spread equals a plain T5ForConditionalGeneration's (the encoder's was 10-90x too large)."""
    config = TigerConfig()
    tokenizer = semid.make("random").fit(semid.load_dataset("builtin:all_beauty_2023").items, [])
    layout = TokenLayout(tokenizer, config.user_buckets)
    ours = dict(build_model(config, layout).named_parameters())
    torch.manual_seed(1)
    reference = dict(T5ForConditionalGeneration(t5_config(config, layout)).named_parameters())
    assert set(ours) == set(reference)
    for name, param in reference.items():
        expected, got = float(param.detach().std()), float(ours[name].detach().std())
        assert abs(got - expected) <= 0.15 * expected + 1e-6, (name, got, expected)
    q = ours["encoder.block.0.layer.0.SelfAttention.q.weight"]
    assert float(q.detach().std()) == pytest.approx((config.d_model * config.d_kv) ** -0.5, rel=0.1)


@pytest.fixture(scope="module")
def trained():
    """A small TIGER trained for a fixed number of steps on the embedded dataset's training part."""
    torch.set_num_threads(1)
    dataset = semid.load_dataset("builtin:all_beauty_2023")
    split = leave_one_out(dataset)
    tokenizer = semid.make("random", seed=0).fit(dataset.items, split.train_sequences)
    config = TigerConfig(**SMALL, batch_size=64, warmup_steps=20, recipe="packed")  # the windows below are packed
    layout = TokenLayout(tokenizer, config.user_buckets)
    windows = make_windows(split.train_sequences, split.train_users, layout, max_history=20, recipe="packed")
    model = build_model(config, layout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    model.train()
    losses = []
    for epoch in range(25):
        for batch in length_bucketed_batches(windows, config.batch_size, np.random.default_rng([0, epoch])):
            loss = sequence_loss(model, collate([windows[i] for i in batch], layout))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    model.eval()
    return dataset, split, tokenizer, layout, model, losses


def _train_cases(split) -> list[EvalCase]:
    """The latest training target of every user, with the items before it as history."""
    return [
        EvalCase(user, tuple(seq[:-1][-20:]), seq[-1])
        for user, seq in zip(split.train_users, split.train_sequences)
        if len(seq) >= 2
    ]


def test_beats_popularity_on_its_training_targets(trained):
    dataset, split, tokenizer, layout, model, losses = trained
    cases = _train_cases(split)
    popular = [item for item, _ in Counter(i for s in split.train_sequences for i in s[1:]).most_common(10)]
    popularity_recall = float(np.mean([c.target in popular for c in cases]))
    recommender = TigerRecommender(model, tokenizer, layout, num_beams=10)
    lists = recommender.recommend([c.history for c in cases], 10, users=[c.user_id for c in cases])
    recall = float(np.mean([c.target in row for c, row in zip(cases, lists)]))
    # Measured: recall 0.245 against popularity 0.043; with the old N(0, 1) encoder init 0.083.
    assert recall >= popularity_recall + 0.12, (recall, popularity_recall)
    assert np.mean(losses[-10:]) < 0.65 * np.mean(losses[:10])  # measured 1.94 vs 3.57


def test_lists_depend_on_the_history(trained):
    dataset, split, tokenizer, layout, model, _ = trained
    cases = split.valid
    report = list_diversity(TigerRecommender(model, tokenizer, layout, num_beams=10), cases)
    # Measured: 230 distinct items of 356, swap overlap 0.15; old encoder init: 80 and 0.49.
    assert report["distinct@10"] >= 150, report
    assert report["swap_overlap@10"] <= 0.35, report


def test_textbook_t5_and_packed_recipe_reach_the_same_loss():
    """Same targets per step: a plain T5 on per-prefix examples with 2-d masks and
    `labels`, and semid's packed block-causal batches, end at the same training loss."""
    torch.set_num_threads(1)
    dataset = semid.load_dataset("builtin:all_beauty_2023")
    split = leave_one_out(dataset)
    tokenizer = semid.make("random", seed=0).fit(dataset.items, split.train_sequences)
    config = TigerConfig(**{**SMALL, "dropout": 0.0}, user_buckets=0, recipe="packed")
    layout = TokenLayout(tokenizer, 0)
    windows = make_windows(split.train_sequences, split.train_users, layout, max_history=20, recipe="packed")
    ours = build_model(config, layout)
    torch.manual_seed(config.seed)  # the textbook arm initialises itself, the transformers way
    textbook = T5ForConditionalGeneration(t5_config(config, layout))
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-3, weight_decay=0.01)
    opt_text = torch.optim.AdamW(textbook.parameters(), lr=1e-3, weight_decay=0.01)
    curves: dict[str, list[float]] = {"ours": [], "textbook": []}
    for epoch in range(EPOCHS_SAME_LOSS):
        for batch in length_bucketed_batches(windows, 64, np.random.default_rng([1, epoch])):
            chosen = [windows[i] for i in batch]
            loss = sequence_loss(ours, collate(chosen, layout))
            opt_ours.zero_grad()
            loss.backward()
            opt_ours.step()
            curves["ours"].append(float(loss.detach()))
            examples = [(w.items[:visible], target) for w in chosen for target, visible in w.targets]
            width = max(len(h) for h, _ in examples) * layout.code_length
            enc = torch.full((len(examples), width), PAD_ID, dtype=torch.long)
            for r, (history, _) in enumerate(examples):
                ids = layout.encoder_ids(history, None)
                enc[r, : len(ids)] = torch.from_numpy(ids)
            labels = torch.from_numpy(np.stack([layout.item_tokens[t] for _, t in examples]))
            loss = textbook(input_ids=enc, attention_mask=(enc != PAD_ID).long(), labels=labels).loss
            opt_text.zero_grad()
            loss.backward()
            opt_text.step()
            curves["textbook"].append(float(loss.detach()))
    first = np.mean(curves["textbook"][:5])
    end_ours, end_text = np.mean(curves["ours"][-20:]), np.mean(curves["textbook"][-20:])
    assert end_text < 0.7 * first  # the textbook arm learns
    # Block-causal vs bidirectional encoder: close, not identical. Measured: 1.007 vs 1.040;
    # with the old N(0, 1) encoder init 1.213.
    assert end_ours == pytest.approx(end_text, rel=0.08), (end_ours, end_text)
