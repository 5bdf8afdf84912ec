"""The parallel generator: pooling, the multi-code loss by hand, exact scoring equals brute force, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import semid
from semid.cli.main import cli
from semid.errors import ParameterError
from semid.gen.parallel import ParallelConfig, ParallelModel, item_code_tokens

DATA = "builtin:all_beauty_2023"
TINY = dict(n_layers=1, d_model=16, n_heads=2, d_ff=32, dropout=0.0, max_history=6, temperature=0.5)


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset(DATA)


@pytest.fixture(scope="module")
def index(data):
    x = np.random.default_rng(0).normal(size=(len(data.items), 16)).astype(np.float32)
    return semid.make("pq", m=4, codebook_size=8, n_iter=5, disambiguation="always").fit(data.items, embeddings=x)


def test_item_input_pools_its_code_embeddings(index):
    torch.manual_seed(0)
    tokens = item_code_tokens(index)
    for pooling, reduce in (("sum", torch.sum), ("mean", torch.mean)):
        model = ParallelModel(ParallelConfig(**TINY, pooling=pooling), index)
        expected = reduce(model.embedding.weight[tokens[3]], 0)
        torch.testing.assert_close(model.item_embeddings(torch.tensor([3, 3, 0]))[0], expected)
    assert tokens.shape == (len(index.item_ids) + 1, index.codes.shape[1])


def test_loss_is_the_mean_code_cross_entropy_over_positions_by_hand(index):
    torch.manual_seed(0)
    model = ParallelModel(ParallelConfig(**TINY), index).eval()
    items = torch.tensor([[0, 5, 9, 2], [0, 0, 7, 1]])
    loss = model.loss(items)
    logps = model.forward(items[:, :-1])
    codes = torch.as_tensor(index.codes, dtype=torch.long)
    terms = []
    for b, t in [(0, 1), (0, 2), (1, 2)]:  # positions with a real input and a real target
        target = int(items[b, t + 1]) - 1
        terms.append(torch.stack([-logps[lv][b, t, codes[target, lv]] for lv in range(len(logps))]).mean())
    torch.testing.assert_close(loss, torch.stack(terms).mean())


def test_batched_level_logits_equal_each_levels_cosine_by_hand(index):
    """All levels come from one padded product; each must equal its own table's cosine / temperature."""
    torch.manual_seed(2)
    model = ParallelModel(ParallelConfig(**TINY), index).eval()
    assert len(set(model.level_sizes)) > 1  # the disambiguation level is shorter: the padding is exercised
    with torch.no_grad():
        torch.nn.init.normal_(model.head_weight, std=0.3)  # leave the identity start, so the head matters
        hidden = torch.randn(3, 16)
        logps = model._level_logps(hidden)
        mixed = torch.einsum("nd,lkd->nlk", hidden, model.head_weight) + model.head_bias
        queries = hidden[:, None, :] + torch.nn.functional.silu(mixed)
        offsets = index.vocab.level_offsets()
        for level, size in enumerate(model.level_sizes):
            table = model.embedding.weight[offsets[level] : offsets[level] + size]
            cosine = torch.nn.functional.cosine_similarity(queries[:, level, None, :], table[None], dim=-1)
            torch.testing.assert_close(logps[level], torch.log_softmax(cosine / TINY["temperature"], -1))


def test_length_sorted_chunks_give_the_whole_batchs_states_loss_and_gradients(index):
    torch.manual_seed(3)
    model = ParallelModel(ParallelConfig(**TINY), index).eval()
    items = torch.tensor([[0, 0, 0, 0, 5, 9], [3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 2], [0, 0, 7, 1, 2, 3],
                          [0, 0, 0, 11, 12, 13]])
    results = []
    for chunk in (len(items), 2):
        model.chunk_rows = chunk
        model.zero_grad()
        loss = model.loss(items)
        loss.backward()
        real = (items[:, 1:] > 0).unsqueeze(-1)  # padding states are never read
        states = (model._hidden(items[:, 1:]) * real).detach()
        results.append((states, loss.detach(), model.embedding.weight.grad.clone()))
    for whole, chunked in zip(*results):
        torch.testing.assert_close(chunked, whole)


def _loss_and_gradients(index, **settings):
    torch.manual_seed(4)
    model = ParallelModel(ParallelConfig(**TINY, **settings), index).eval()
    with torch.no_grad():
        torch.nn.init.normal_(model.head_weight, std=0.3)
    items = torch.tensor([[0, 0, 5, 9, 2, 4], [3, 4, 5, 6, 7, 8], [0, 0, 0, 7, 1, 2]])
    loss = model.loss(items)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_compiled_head_gives_the_eager_loss_and_gradients(index):
    pytest.importorskip("torch._inductor")
    eager_loss, eager_grads = _loss_and_gradients(index)
    loss, grads = _loss_and_gradients(index, compile=True)
    torch.testing.assert_close(loss, eager_loss, rtol=1e-5, atol=1e-5)
    for name, grad in eager_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)


def test_bf16_training_is_close_to_fp32_and_keeps_float32_weights(index):
    eager_loss, eager_grads = _loss_and_gradients(index)
    loss, grads = _loss_and_gradients(index, precision="bf16")
    assert loss.dtype == torch.float32 and all(g.dtype == torch.float32 for g in grads.values())
    assert abs(float(loss) - float(eager_loss)) < 0.02 * float(eager_loss)
    for name, grad in eager_grads.items():
        cosine = torch.nn.functional.cosine_similarity(grads[name].flatten(), grad.flatten(), dim=0)
        assert cosine > 0.98, (name, float(cosine))
    with pytest.raises(ParameterError, match="precision"):
        ParallelConfig(**TINY, precision="fp8").validate()


def test_bf16_keeps_the_sharp_cosine_logits_float32():
    """At RPG's temperature 0.03 logits reach 33, where bfloat16 rounds to steps of 0.125-0.25."""
    from semid.gen.parallel.model import cosine_level_logits
    from semid.gen.training import autocast

    torch.manual_seed(5)
    hidden, weight, bias = torch.randn(64, 32), 0.1 * torch.randn(3, 32, 32), torch.zeros(3, 32)
    table = torch.randn(3, 256, 32)
    table[:, 0] = hidden[0]  # a near-perfect match: a logit close to 1 / 0.03
    exact = cosine_level_logits(hidden, weight, bias, table, None, 0.03)
    with autocast("bf16", "cpu"):
        mixed = cosine_level_logits(hidden, weight, bias, table, None, 0.03)
    assert mixed.dtype == torch.float32 and float(exact.max()) > 25
    assert float((mixed - exact).abs().max()) < 0.05


def test_exact_scoring_equals_brute_force(index):
    torch.manual_seed(1)
    model = ParallelModel(ParallelConfig(**TINY), index).eval()
    items = torch.tensor([[0, 0, 4, 8, 15, 16]])
    scores = model.score_all(items)[0]
    logps = [lp[0, -1] for lp in model.forward(items)]
    codes = index.codes
    for item in (0, 17, len(codes) - 1):
        expected = np.mean([float(logps[lv][codes[item, lv]]) for lv in range(len(logps))])
        assert float(scores[item]) == pytest.approx(expected, abs=1e-5)


def test_variable_length_codes_are_refused(data):
    tok = semid.make("title").fit(data.items)
    with pytest.raises(ParameterError, match="same length"):
        item_code_tokens(tok)


def test_train_evaluate_recommend(data, index, tmp_path):
    index.save(tmp_path / "idx")
    settings = [a for k, v in {**TINY, "batch_size": 64, "warmup_steps": 5, "lr": 0.005, "eval_users": 30}.items()
                for a in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(cli, ["train", "rpg", "--data", DATA, "--index", str(tmp_path / "idx"), "--out",
                                      str(tmp_path / "run"), "--max-epochs", "3", "--quiet", *settings])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 3 and summary["stopped"] == "max_epochs"
    evaluated = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "run"), "--data", DATA, "--users", "40"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["model_type"] == "rpg" and report["metrics"]["invalid_rate"] == 0.0
    history = ",".join(data.sequences.items[0][:3])
    shown = CliRunner().invoke(cli, ["recommend", str(tmp_path / "run"), "--history", history, "--k", "4"])
    assert shown.exit_code == 0 and len(shown.stdout.strip().splitlines()) == 4
    banana = CliRunner().invoke(cli, ["train", "rpg", "--data", DATA, "--index", str(tmp_path / "idx"), "--out",
                                      str(tmp_path / "run2"), "--set", "device=banana"])
    assert banana.exit_code == 1 and "unknown device 'banana'" in banana.output
    assert not (tmp_path / "run2").exists()


def test_graph_decoding_finds_the_exact_top_items(data, index):
    from semid.gen.parallel import ParallelRecommender, build_code_graph

    torch.manual_seed(0)
    model = ParallelModel(ParallelConfig(**TINY), index).eval()
    graph = build_code_graph(index.codes, edges=30)
    assert graph.shape == (len(index.item_ids), 30) and not (graph == np.arange(len(graph))[:, None]).any()
    shared = [(index.codes[0] == index.codes[j]).sum() for j in graph[0]]
    assert shared == sorted(shared, reverse=True)  # neighbours ordered by shared codes
    histories = [s[:-1][-6:] for s in data.sequences.items[:20]]
    exact = ParallelRecommender(model, index.item_ids, max_history=6).recommend(histories, 10)
    walk = ParallelRecommender(model, index.item_ids, max_history=6, decoding="graph", edges=30, beam=20,
                               steps=3).recommend(histories, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, walk)])
    assert all(len(w) == 10 and set(w) <= set(index.item_ids) for w in walk) and overlap >= 0.5
    full = ParallelRecommender(model, index.item_ids, max_history=6, decoding="graph", edges=len(index.item_ids) - 1,
                               beam=20, steps=1).recommend(histories, 10)
    assert full == exact  # a complete graph visits every item: exactly the exact ranking


def test_evaluate_with_graph_decoding(data, index, tmp_path):
    index.save(tmp_path / "idx")
    settings = [a for k, v in {**TINY, "batch_size": 64, "warmup_steps": 5, "eval_users": 10}.items()
                for a in ("--set", f"{k}={v}")]
    assert CliRunner().invoke(cli, ["train", "rpg", "--data", DATA, "--index", str(tmp_path / "idx"), "--out",
                                    str(tmp_path / "run"), "--max-epochs", "1", "--quiet", *settings]).exit_code == 0
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "run"), "--data", DATA, "--users", "20",
                                      "--decoding", "graph", "--beams", "10"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["model"]["ranking"].startswith("graph-constrained")


def test_skipping_all_padding_columns_changes_nothing(index):
    torch.manual_seed(0)
    model = ParallelModel(ParallelConfig(**TINY), index).eval()
    items = torch.tensor([[0, 0, 0, 4, 8, 15], [0, 0, 0, 0, 3, 9]])
    trimmed = model.score_all(items)
    mask = (items > 0).long()
    positions = torch.arange(items.shape[1]).expand(2, -1)
    full = model.transformer(inputs_embeds=model.item_embeddings(items), attention_mask=mask,
                             position_ids=positions).last_hidden_state
    reference = model._level_logps(full[:, -1])
    codes = model.item_tokens[1:] - model.level_offsets
    expected = sum(lp[:, codes[:, lv]] for lv, lp in enumerate(reference)) / len(reference)
    torch.testing.assert_close(trimmed, expected, rtol=1e-4, atol=1e-5)


def test_d3_blend_with_an_assistant(data, index, tmp_path):
    from semid.evaluation import leave_one_out
    from semid.gen.decoding.assistant import PopularityScorer
    from semid.gen.parallel import ParallelRecommender

    torch.manual_seed(0)
    model = ParallelModel(ParallelConfig(**TINY), index).eval()
    histories = [s[:-1][-6:] for s in data.sequences.items[:10]]
    popularity = PopularityScorer(index.item_ids, leave_one_out(data).train_sequences)
    plain = ParallelRecommender(model, index.item_ids, max_history=6)
    exact = plain.recommend(histories, 10)
    plain.set_assistant(popularity, 0.0)
    assert plain.recommend(histories, 10) == exact  # alpha 0: the model alone
    plain.set_assistant(popularity, 1.0)
    counts = dict(zip(index.item_ids, popularity.counts_.tolist()))
    top = sorted(counts.values(), reverse=True)[:10]
    for ranked in plain.recommend(histories, 10):  # alpha 1: the assistant alone
        assert sorted((counts[i] for i in ranked), reverse=True) == top
    with pytest.raises(ParameterError, match="needs exact scoring"):
        ParallelRecommender(model, index.item_ids, max_history=6, decoding="graph", edges=10).set_assistant(
            popularity, 0.5)
    with pytest.raises(ParameterError, match="needs an assistant"):
        plain.set_assistant(None, 0.5)
    index.save(tmp_path / "idx")
    settings = [a for k, v in {**TINY, "eval_users": 10}.items() for a in ("--set", f"{k}={v}")]
    assert CliRunner().invoke(cli, ["train", "rpg", "--data", DATA, "--index", str(tmp_path / "idx"), "--out",
                                    str(tmp_path / "run"), "--max-epochs", "1", "--quiet", *settings]).exit_code == 0
    blended = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "run"), "--data", DATA, "--users", "20",
                                       "--decoding", "d3", "--assistant", "popularity", "--alpha", "0.3"])
    assert blended.exit_code == 0, blended.output
    assert "D3 blend" in json.loads(blended.stdout)["settings"]["model"]["ranking"]


def test_warm_up_in_epochs_follows_the_dataset_size(index):
    from semid.gen.parallel.train import ParallelTrainable

    for per_epoch in (4, 88):  # MovieLens-100K and Beauty at batch 256
        config = ParallelConfig(**TINY, max_epochs=10, warmup_epochs=2.5, warmup_steps=300, lr=0.01)
        model = ParallelModel(config, index)
        trainable = ParallelTrainable(model, torch.optim.AdamW(model.parameters()), torch.zeros(1, 7, dtype=torch.long),
                                      [], list(index.item_ids), config, total_steps=per_epoch * 10)
        assert trainable.warmup_steps == round(2.5 * per_epoch)
        trainable.step = trainable.warmup_steps - 1
        assert trainable._lr() == pytest.approx(0.01)  # the warm-up ends after 2.5 epochs, not after 300 steps
    steps = ParallelTrainable(model, torch.optim.AdamW(model.parameters()), torch.zeros(1, 7, dtype=torch.long), [],
                              list(index.item_ids), ParallelConfig(**TINY, warmup_steps=300), total_steps=40)
    assert steps.warmup_steps == 300
