"""A tiny randomly initialised causal LM and tokenizer for LC-Rec plumbing tests.

The tokenizer is a byte-level BPE trained in a fraction of a second on the item
titles of the built-in dataset plus the prompt templates; the model is a
2-layer LLaMA with hidden size 32. Neither is meant to learn anything useful.
"""

from __future__ import annotations

import json
from pathlib import Path


def build_tiny_model(directory: Path, texts: list[str], *, tie: bool = True, context: int = 512) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from semid.gen.lcrec.templates import load_prompts

    prompts = load_prompts()
    corpus = list(texts) + [t for task in prompts.tasks.values() for t in task["templates"]]
    corpus.append(prompts.plain_prompt_format)
    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    core.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=context,
        tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    model = LlamaForCausalLM(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def dataset_texts(dataset) -> list[str]:
    return [str(r.get("title") or "") for r in dataset.items.records] + [
        json.dumps(r.get("categories") or []) for r in dataset.items.records
    ]


# -- shared pytest fixtures (imported by the tests/test_lcrec_*.py modules) ------------
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def lcrec_dataset():
    import semid

    return semid.load_dataset("builtin:all_beauty_2023")


@pytest.fixture(scope="session")
def lcrec_index(lcrec_dataset):
    import semid

    return semid.make("independent", seed=0).fit(lcrec_dataset.items)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, lcrec_dataset):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_tied") / "model", dataset_texts(lcrec_dataset))


@pytest.fixture(scope="session")
def tiny_untied_dir(tmp_path_factory, lcrec_dataset):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_untied") / "model", dataset_texts(lcrec_dataset), tie=False)


def tiny_config(model_dir, **overrides):
    from semid.gen.lcrec import LCRecConfig

    settings = dict(base_model=str(model_dir), max_per_task=6, batch_size=4, epochs=1, num_beams=8,
                    max_length=256, learning_rate=5e-3, eval_batch_size=3, embed_init="mean")
    settings.update(overrides)
    return LCRecConfig(**settings)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, lcrec_dataset, lcrec_index, tiny_model_dir):
    """A finished LC-Rec run of the tiny model (all tasks, a few steps)."""
    from semid.gen.lcrec import train_lcrec

    root = tmp_path_factory.mktemp("lcrec_run")
    index_dir = lcrec_index.save(root / "index")
    run = root / "run"
    outcome = train_lcrec(lcrec_dataset, index_dir, run, tiny_config(tiny_model_dir, epochs=2, embed_init="text"), progress=False)
    return run, index_dir, outcome
