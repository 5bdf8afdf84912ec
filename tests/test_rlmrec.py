"""RLMRec: template profiles from the training split, both alignments on top of LightGCN."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import semid
from semid.cli.main import cli
from semid.gen.cf.rlmrec import _info_nce, profile_texts

DATA = "builtin:all_beauty_2023"


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    out = tmp_path_factory.mktemp("profiles")
    result = CliRunner().invoke(cli, ["cf", "profiles", "--data", DATA, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_profiles_use_the_training_split_only():
    data = semid.load_dataset(DATA)
    users, items = profile_texts(data)
    assert len(users) == len(data.sequences) and len(items) == len(data.items)
    seq = data.sequences.items[0]
    test_title = data.items[seq[-1]]["title"]
    assert data.items[seq[0]]["title"] in users[0] if len(seq) > 2 else True
    if test_title not in {data.items[i]["title"] for i in seq[:-2]}:
        assert test_title not in users[0]  # the held-out items never leak into a profile


def test_info_nce_by_hand():
    a, b = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    logits = torch.tensor([[1.0, 2 ** -0.5], [0.0, 2 ** -0.5]]) / 0.5
    expected = (torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])))
    torch.testing.assert_close(_info_nce(a, b, 0.5), expected)


@pytest.mark.parametrize("mode", ["con", "gen"])
def test_both_alignments_train_and_evaluate(profiles, tmp_path, mode):
    run = tmp_path / mode
    result = CliRunner().invoke(cli, ["cf", "train", "rlmrec", "--data", DATA, "--out", str(run), "--max-epochs", "2",
                                      "--set", f"profiles={profiles}", "--set", f"mode={mode}",
                                      "--set", "batch_size=512", "--set", "kd_weight=0.1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epochs"] == 2
    evaluated = CliRunner().invoke(cli, ["evaluate", str(run), "--data", DATA, "--users", "20", "--k", "10"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["model_type"] == "rlmrec"


def _con_model(profiles, **overrides):
    from semid.gen.cf import build_config, build_model, prepare_cf_data

    data = semid.load_dataset(DATA)
    cf = prepare_cf_data(data)
    config = build_config("rlmrec", {"profiles": str(profiles), "mode": "con", "hidden": 8, **overrides})
    torch.manual_seed(0)
    model = build_model("rlmrec", cf.n_items, cf.n_users, config)
    model.attach_graph(cf)
    return model, cf


def test_a_node_repeated_in_the_batch_is_never_its_own_negative(profiles):
    model, cf = _con_model(profiles, kd_weight=1.0)
    batch = next(model.training_batches(cf, torch.Generator().manual_seed(0)))[:64]
    # Duplicating every row changes nothing: BPR and L2 are means, the alignment counts each node once.
    torch.testing.assert_close(model.loss(torch.cat([batch, batch]), torch.Generator()),
                               model.loss(batch, torch.Generator()))


def test_layers_are_summed_as_in_the_reference(profiles):
    from semid.gen.cf.lightgcn import LightGCN

    summed, _ = _con_model(profiles)
    averaged, _ = _con_model(profiles, layer_sum=False)
    users_sum, items_sum = summed.propagate()
    users_mean, items_mean = LightGCN.propagate(summed)
    k = summed.config.n_layers + 1
    torch.testing.assert_close(users_sum, k * users_mean)
    torch.testing.assert_close(items_sum, k * items_mean)
    torch.testing.assert_close(averaged.propagate()[1], items_mean)


class _Writer:
    """A scripted profile writer (plumbing): JSON for items, garbage for every third user."""

    name = "scripted"

    def __init__(self):
        self.prompts = []

    def generate(self, prompts, *, max_new_tokens=128, temperature=0.0, seed=0):
        out = []
        for prompt in prompts:
            self.prompts.append(prompt)
            n = len(self.prompts)
            if "which kinds of users" in prompt:
                out.append('Sure: {"summarization": "fans of item %d", "reasoning": "because"}' % n)
            else:
                out.append("no json here" if n % 3 == 0 else '{"summarization": "likes things %d"}' % n)
        return out


def test_llm_profiles_follow_the_reference_and_only_the_training_split(tmp_path):
    from semid.embeddings import read_embeddings
    from semid.gen.cf.rlmrec import llm_profile_texts, write_profiles

    data = semid.load_dataset(DATA)
    writer = _Writer()
    users, items, stats = llm_profile_texts(data, writer, noun="product", progress=False)
    assert len(items) == len(data.items) and len(users) == len(data.sequences)
    assert items[0] == "fans of item 1" and writer.prompts[0].count("product") >= 2
    assert stats["unparsed_items"] == 0 and stats["unparsed_users"] > 0
    assert "no json here" in users  # an unparsed answer is kept whole, and counted
    # A user's prompt carries the item profiles of its training items, never its held-out ones.
    seq = data.sequences.items[0]
    user_prompt = writer.prompts[len(data.items)]
    first_profile = items[data.items.item_ids.index(seq[0])]
    assert first_profile in user_prompt or len(seq) < 3
    held_out = items[data.items.item_ids.index(seq[-1])]
    if seq[-1] not in seq[:-2]:
        assert held_out not in user_prompt
    facts = write_profiles(data, tmp_path / "p", backend=_Writer(), noun="product", progress=False)
    assert facts["profiles"].startswith("written by an LLM")
    ids, matrix, meta = read_embeddings(tmp_path / "p" / "items.npz")
    assert ids == data.items.item_ids and meta["backend"] == "scripted"
    assert json.loads((tmp_path / "p" / "profiles.json").read_text())["items"][ids[0]] == "fans of item 1"
