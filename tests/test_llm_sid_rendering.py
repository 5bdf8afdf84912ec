"""TALLRec, S-DPO and InstructRec with items shown by semantic IDs: code tokens added and trained."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import semid
from _lcrec_tiny import build_tiny_model, dataset_texts
from semid.cli.main import cli
from semid.errors import ParameterError
from semid.gen.instructrec import InstructRecConfig
from semid.gen.llm.rendering import add_rendering_tokens, tuned_item_texts
from semid.gen.sdpo import SDPOConfig
from semid.gen.tallrec import TallRecConfig

DATA = "builtin:all_beauty_2023"


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset(DATA)


@pytest.fixture(scope="module")
def index_dir(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("idx") / "random"
    semid.make("random", seed=1).fit(data.items).save(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, data):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "m", dataset_texts(data))


def test_texts_and_tokens(data, index_dir, tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    texts, index = tuned_item_texts(data, "title+sid", str(index_dir))
    item = data.items.item_ids[0]
    assert texts[item].endswith(index.render(item)) and texts[item] != index.render(item)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny), AutoTokenizer.from_pretrained(tiny)
    ids = add_rendering_tokens(model, tokenizer, index)
    assert len(ids) == index.vocab.n_tokens and model.get_input_embeddings().weight.shape[0] >= max(ids) + 1
    encoded = tokenizer(index.render(item), add_special_tokens=False)["input_ids"]
    n_codes = int((index.codes[0] >= 0).sum())
    assert len(encoded) == n_codes and set(encoded) <= set(ids)  # one single token per code
    assert add_rendering_tokens(model, tokenizer, None) == []
    assert tuned_item_texts(data, "title", None)[1] is None


@pytest.mark.parametrize("config", [TallRecConfig, SDPOConfig, InstructRecConfig])
def test_rendering_and_index_must_agree(config):
    with pytest.raises(ParameterError, match="needs an index"):
        config(rendering="sid")
    with pytest.raises(ParameterError, match="does not use it"):
        config(index="somewhere")


def _trained_code_rows(run_dir):
    from safetensors.torch import load_file

    names = list(load_file(str(run_dir / "checkpoints" / "best" / "trainable.safetensors")))
    return [n for n in names if "trainable_tokens" in n]


def test_tallrec_with_sid_rendering_trains_the_code_rows(tiny, index_dir, tmp_path):
    out = tmp_path / "tallrec"
    result = CliRunner().invoke(cli, ["train", "tallrec", "--data", DATA, "--out", str(out), "--llm", str(tiny),
                                      "--index", str(index_dir), "--samples", "16", "--max-epochs", "1", "--quiet",
                                      "--set", "rendering=sid", "--set", "history=3", "--set", "keep_last=200",
                                      "--set", "batch_size=8", "--set", "micro_batch=4", "--set", "valid_samples=10"])
    assert result.exit_code == 0, result.output
    assert 0.0 <= json.loads(result.stdout)["test_auc"] <= 1.0
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["rendering"] == "sid" and run["index"]["fingerprint"]
    assert _trained_code_rows(out)


def test_sdpo_and_instructrec_with_sid_rendering(tiny, index_dir, tmp_path):
    sdpo = CliRunner().invoke(cli, ["train", "sdpo", "--data", DATA, "--out", str(tmp_path / "sdpo"), "--llm",
                                    str(tiny), "--index", str(index_dir), "--quiet", "--negatives", "1",
                                    "--set", "rendering=title+sid", "--set", "train_users=8", "--set", "valid_users=2",
                                    "--set", "test_users=2", "--set", "candidates=3", "--set", "sft_epochs=1",
                                    "--set", "sdpo_epochs=1", "--set", "batch_size=8", "--set", "max_new_tokens=4"])
    assert sdpo.exit_code == 0, sdpo.output
    assert set(json.loads(sdpo.stdout)["stages"]) == {"sft", "sdpo"}
    assert _trained_code_rows(tmp_path / "sdpo" / "sdpo")
    instruct = CliRunner().invoke(cli, ["train", "instructrec", "--data", DATA, "--out", str(tmp_path / "ir"),
                                        "--llm", str(tiny), "--index", str(index_dir), "--quiet", "--set",
                                        "rendering=sid", "--set", "train_users=8", "--set", "valid_users=2", "--set",
                                        "test_users=2", "--set", "candidates=3", "--set", "max_epochs=1"])
    assert instruct.exit_code == 0, instruct.output
    assert json.loads(instruct.stdout)["test"]["hr@5"] == 1.0  # 3 candidates
    assert _trained_code_rows(tmp_path / "ir")
