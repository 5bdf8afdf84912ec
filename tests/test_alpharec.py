"""AlphaRec: title embeddings through an MLP and LightGCN, InfoNCE, and zero-shot transfer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import semid
from semid.cli.main import cli
from semid.data.dataset import Dataset, ItemTable
from semid.errors import ParameterError
from semid.evaluation import MostPopular, evaluate
from semid.gen.cf import AlphaRecConfig, TrainOptions, load_run, train_cf, zero_shot_recommender

DATA = "builtin:all_beauty_2023"


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset(DATA)


@pytest.fixture(scope="module")
def titles(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("emb") / "titles.npz"
    result = CliRunner().invoke(cli, ["embed", "--data", DATA, "--out", str(out), "--fields", "title", "--no-cache"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("items_per_negative", [0, 10_000])  # gathered negatives, then one matmul
def test_infonce_by_hand(data, titles, monkeypatch, items_per_negative):
    from semid.gen.cf import AlphaRec
    from semid.gen.cf.data import prepare_cf_data

    monkeypatch.setattr("semid.gen.cf.alpharec._MATMUL_ITEMS_PER_NEGATIVE", items_per_negative)
    cf = prepare_cf_data(data)
    model = AlphaRec(cf.n_items, cf.n_users, AlphaRecConfig(embeddings=str(titles), negatives=4, n_layers=1))
    model.attach_graph(cf)
    batch = torch.tensor([[0, 3], [1, 5]])
    loss = model.loss(batch, torch.Generator().manual_seed(0))
    users, items = model.propagate()
    negatives = torch.randint(0, cf.n_items, (2, 4), generator=torch.Generator().manual_seed(0))
    cos = torch.nn.functional.cosine_similarity
    expected = []
    for b in range(2):
        u = users[batch[b, 0]]
        pos = cos(u, items[batch[b, 1]], dim=0) / 0.15
        neg = torch.stack([cos(u, items[j], dim=0) for j in negatives[b]]) / 0.15
        expected.append(-(pos - torch.logsumexp(torch.cat([pos[None], neg]), 0)))
    torch.testing.assert_close(loss, torch.stack(expected).mean())
    # A user's input is the mean title embedding of its training items.
    u0 = cf.train_sequences[0]
    torch.testing.assert_close(model.user_text[0], model.item_text[torch.as_tensor(np.unique(u0)) - 1].mean(0))


def test_trains_beats_popularity_and_transfers_zero_shot(data, titles, tmp_path):
    run = tmp_path / "alpharec"
    summary = train_cf(run, data, model_name="alpharec",
                       overrides={"embeddings": str(titles), "batch_size": 512, "lr": 5e-3},
                       options=TrainOptions(max_epochs=30, patience=30, eval_every=30), progress=False)
    assert summary["epochs"] == 30
    model, config, item_ids, user_ids = load_run(run, weights="last")
    assert config["model"] == "alpharec"
    # On the training data the learned user/item geometry must beat the popularity list.
    from semid.gen.cf import CFRecommender
    from semid.gen.cf.data import prepare_cf_data

    cf = prepare_cf_data(data)
    rec = CFRecommender(model, item_ids, user_ids)
    split = semid.evaluation.leave_one_out(data)
    users = [u for u, s in zip(split.train_users, split.train_sequences) if len(s) >= 2]
    seqs = [s for s in split.train_sequences if len(s) >= 2]
    lists = rec.recommend([s[:-1] for s in seqs], 10, users=users)
    learned = np.mean([s[-1] in top for s, top in zip(seqs, lists)])
    popular = MostPopular(data).ranked[:10]
    baseline = np.mean([s[-1] in popular for s in seqs])
    assert learned > baseline, (learned, baseline)
    del cf
    # Zero-shot: the same catalogue in another order is "another dataset" to the MLP; the
    # recommendations must follow the items, not their row positions.
    shuffled = Dataset("shuffled", ItemTable(list(reversed(data.items.records))), data.sequences)
    zs = zero_shot_recommender(run, shuffled, str(titles))
    result = evaluate(zs, shuffled, ks=(10,), progress=False, beyond_accuracy=False)
    same = evaluate(zero_shot_recommender(run, data, str(titles)), data, ks=(10,), progress=False,
                    beyond_accuracy=False)
    assert result["metrics"]["recall@10"] == pytest.approx(same["metrics"]["recall@10"])
    assert result["settings"]["model"]["ranking"].startswith("cosine")
    # The batched ranking equals the definition for one user, computed by hand.
    history = list(data.sequences.items[0][:-1])
    text = torch.from_numpy(semid.embeddings.load_embeddings(str(titles), data.items.item_ids))
    rows = [data.items.item_ids.index(i) for i in history]
    with torch.no_grad():
        query = torch.nn.functional.normalize(model.mlp(text[rows].mean(0, keepdim=True)), dim=-1)
        scores = (query @ torch.nn.functional.normalize(model.mlp(text), dim=-1).T)[0]
    expected = [data.items.item_ids[j] for j in torch.topk(scores, 5).indices.tolist()]
    assert zero_shot_recommender(run, data, str(titles)).recommend([history], 5) == [expected]
    cli_result = CliRunner().invoke(cli, ["cf", "zero-shot", str(run), "--data", DATA, "--embeddings", str(titles),
                                          "--k", "10", "--exclude-seen"])
    assert cli_result.exit_code == 0, cli_result.output
    out = json.loads(cli_result.stdout)
    assert out["run"]["zero_shot"] is True and out["settings"]["exclude_seen"] is True


def test_embeddings_are_required():
    from semid.gen.cf.models import build_config

    config = build_config("alpharec", {})
    with pytest.raises(ParameterError, match="needs title embeddings"):
        from semid.gen.cf import AlphaRec

        AlphaRec(10, 5, config)
