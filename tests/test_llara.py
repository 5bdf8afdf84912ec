"""LLaRA: placeholders carry projected item embeddings, the curriculum, both item sources, end to end."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import semid
from _lcrec_tiny import build_tiny_model, dataset_texts
from semid.cli.main import cli
from semid.errors import ParameterError
from semid.gen.llara import LLaRAConfig

DATA = "builtin:all_beauty_2023"
SMALL = ["--set", "train_users=16", "--set", "valid_users=4", "--set", "test_users=4", "--set", "candidates=5",
         "--set", "max_epochs=2", "--set", "batch_size=8", "--set", "max_new_tokens=8", "--set", "max_history=4"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "m", dataset_texts(semid.load_dataset(DATA)))


@pytest.fixture(scope="module")
def sasrec(tmp_path_factory):
    run = tmp_path_factory.mktemp("cf") / "sasrec"
    result = CliRunner().invoke(cli, ["cf", "train", "sasrec", "--data", DATA, "--out", str(run), "--max-epochs", "1",
                                      "--set", "hidden=16", "--set", "n_blocks=1", "--set", "max_len=10"])
    assert result.exit_code == 0, result.output
    return run


def test_an_item_source_is_required():
    with pytest.raises(ParameterError, match="needs cf_run"):
        LLaRAConfig().require_inputs()
    with pytest.raises(ParameterError, match="needs index"):
        LLaRAConfig(item_source="index").require_inputs()


def test_sasrec_embeddings_through_the_projector_end_to_end(tiny, sasrec, tmp_path):
    result = CliRunner().invoke(cli, ["train", "llara", "--data", DATA, "--out", str(tmp_path / "run"), "--cf-run",
                                      str(sasrec), "--llm", str(tiny), "--quiet", *SMALL])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["item_source"] == "sasrec" and summary["steps"] == 4 and summary["metric"] == "hr@1_all"
    assert set(summary["test"]) == {"hr@1_all", "hr@1_valid", "valid_ratio"}


def test_placeholders_are_replaced_and_the_curriculum_goes_easy_to_hard(tiny, sasrec):
    import torch

    from semid.gen.llara.train import TEXT_ONLY, LLaRATrainable, _Example, _ItemSource
    from semid.gen.llm.base_model import load_causal_lm

    data = semid.load_dataset(DATA)
    config = LLaRAConfig(cf_run=str(sasrec), max_epochs=1)
    source = _ItemSource(config, data)
    model, tokenizer = load_causal_lm(tiny)
    tokenizer.add_special_tokens({"additional_special_tokens": ["[HistoryEmb]", "[CansEmb]", TEXT_ONLY]})
    model.resize_token_embeddings(len(tokenizer))
    projector = torch.nn.Linear(source.dim, model.config.hidden_size)
    titles = {r["item_id"]: r["title"] for r in data.items.records}
    items = data.items.item_ids
    trainable = LLaRATrainable(model, tokenizer, projector, source, None, [], [], titles, config, total_steps=100)
    example = _Example(items[:2], items[2:5], items[3])
    ids, _, _ = trainable._batch([example], hybrid=True, with_answer=False)
    embeds = trainable._embed(ids, [example], hybrid=True)
    slots = (ids == trainable.ids["[HistoryEmb]"]) | (ids == trainable.ids["[CansEmb]"])
    assert int(slots.sum()) == 5
    expected = projector(source([*example.history, *example.candidates]))
    torch.testing.assert_close(embeds[slots], expected)
    text_ids, _, _ = trainable._batch([example], hybrid=False, with_answer=False)
    assert int((text_ids == trainable.ids[TEXT_ONLY]).sum()) == 5 and not bool(
        ((text_ids == trainable.ids["[HistoryEmb]"]) | (text_ids == trainable.ids["[CansEmb]"])).any())


def test_the_index_variant_uses_code_embeddings(tiny, tmp_path):
    data = semid.load_dataset(DATA)
    semid.make("random", seed=2).fit(data.items).save(tmp_path / "idx")
    result = CliRunner().invoke(cli, ["train", "llara", "--data", DATA, "--out", str(tmp_path / "run"), "--index",
                                      str(tmp_path / "idx"), "--llm", str(tiny), "--quiet", *SMALL,
                                      "--set", "code_dim=8"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["item_source"] == "index"
