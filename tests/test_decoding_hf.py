"""Decoding real (tiny, randomly initialised) transformers models: T5, GPT-2, Llama."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _decoding_testkit import make_tables, model_tokens, random_codes
from hypothesis import given, settings
from hypothesis import strategies as st

from semid.errors import ParameterError
from semid.gen.decoding import (
    FastT5Stepper,
    T5Stepper,
    TrieLogitsProcessor,
    TrieTables,
    constrained_beam_search,
    sequences_to_items,
)
from semid.trie import CodeTrie
from semid.vocab import CodeVocab

transformers = pytest.importorskip("transformers")
from transformers import LogitsProcessorList  # noqa: E402


def tiny_t5(vocab_size: int, seed: int = 0):
    config = transformers.T5Config(
        vocab_size=vocab_size, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2,
        num_decoder_layers=2, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, dropout_rate=0.0,
    )
    torch.manual_seed(seed)
    return transformers.T5ForConditionalGeneration(config).eval()


@pytest.mark.parametrize("stepper_class", [T5Stepper, FastT5Stepper])
@pytest.mark.parametrize("variable", [False, True])
def test_t5_beam_top_k_matches_exhaustive_teacher_forcing(variable, stepper_class):
    codes = random_codes(3, 3, 4, 60, variable)
    trie, vocab, tables = make_tables(codes, 4)
    assert tables.uses_eos == (not trie.is_prefix_free)
    model = tiny_t5(2 + vocab.n_tokens + 4)
    inputs = torch.randint(2, 2 + vocab.n_tokens, (3, 6))
    mask = torch.ones_like(inputs)
    mask[0, :2] = 0
    items, scores = constrained_beam_search(
        stepper_class(model), tables, {"input_ids": inputs, "attention_mask": mask}, num_beams=len(codes), k=10
    )
    for b in range(3):
        with torch.no_grad():
            # padding must be honoured the same way in the exhaustive pass
            exact = _scores_with_mask(model, inputs[b : b + 1], mask[b : b + 1], tables, vocab, codes)
        top = exact.topk(10)
        assert items[b].tolist() == top.indices.tolist()
        torch.testing.assert_close(scores[b], top.values, rtol=0, atol=1e-4)


def _scores_with_mask(model, input_ids, mask, tables, vocab, codes):
    seqs = [model_tokens(tables, vocab, c) for c in codes]
    length = max(len(s) for s in seqs)
    target = torch.tensor([s + [0] * (length - len(s)) for s in seqs])
    keep = torch.tensor([[1] * len(s) + [0] * (length - len(s)) for s in seqs], dtype=torch.float)
    decoder_input = torch.cat([torch.zeros(len(seqs), 1, dtype=torch.long), target[:, :-1]], dim=1)
    logits = model(
        input_ids=input_ids.expand(len(seqs), -1), attention_mask=mask.expand(len(seqs), -1),
        decoder_input_ids=decoder_input,
    ).logits
    return (logits.log_softmax(-1).gather(2, target.unsqueeze(-1)).squeeze(-1) * keep).sum(1)


@pytest.mark.parametrize("tie_word_embeddings", [True, False])
def test_fast_stepper_matches_the_model_forward_step_by_step(tie_word_embeddings):
    config = transformers.T5Config(
        vocab_size=40, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2, num_decoder_layers=3,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, tie_word_embeddings=tie_word_embeddings,
        feed_forward_proj="gated-gelu",
    )
    torch.manual_seed(3)
    model = transformers.T5ForConditionalGeneration(config).eval()
    inputs = torch.randint(2, 40, (3, 7))
    mask = torch.ones_like(inputs)
    mask[2, :3] = 0
    batch = {"input_ids": inputs, "attention_mask": mask}
    reference, fast = T5Stepper(model), FastT5Stepper(model)
    ref_lp, ref_state = reference.start(batch, 4)
    fast_lp, fast_state = fast.start(batch, 4)
    torch.testing.assert_close(fast_lp, ref_lp, rtol=0, atol=1e-5)
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        tokens = torch.randint(2, 40, (12,), generator=gen)
        # parents stay within each user's 4 rows, in a shuffled order
        parents = (torch.arange(3).repeat_interleave(4) * 4 + torch.randint(0, 4, (12,), generator=gen))
        ref_lp, ref_state = reference.step(ref_state, tokens, parents)
        fast_lp, fast_state = fast.step(fast_state, tokens, parents)
        torch.testing.assert_close(fast_lp, ref_lp, rtol=0, atol=1e-5)
    with pytest.raises(ParameterError, match="model.eval"):
        FastT5Stepper(model.train())


def test_small_beam_returns_valid_items_and_agrees_with_hf_generate():
    codes = random_codes(7, 3, 5, 80, False)
    trie, vocab, tables = make_tables(codes, 5)
    model = tiny_t5(2 + vocab.n_tokens + 4, seed=1)
    inputs = torch.randint(2, 2 + vocab.n_tokens, (2, 5))
    items, scores = constrained_beam_search(T5Stepper(model), tables, inputs, num_beams=6, k=6)
    processor = TrieLogitsProcessor(tables, prompt_length=1)  # the decoder start token
    out = model.generate(
        input_ids=inputs, logits_processor=LogitsProcessorList([processor]), num_beams=6,
        num_return_sequences=6, do_sample=False, length_penalty=0.0, early_stopping=True,
        max_new_tokens=tables.max_steps, min_new_tokens=0, eos_token_id=1, pad_token_id=0,
        decoder_start_token_id=0, output_scores=True, return_dict_in_generate=True,
    )
    hf_items = sequences_to_items(tables, out.sequences, prompt_length=1).view(2, 6)
    assert (hf_items >= 0).all()
    for b in range(2):
        assert len(set(hf_items[b].tolist())) == 6
        assert hf_items[b].tolist() == items[b].tolist()
    torch.testing.assert_close(out.sequences_scores.view(2, 6), scores, rtol=0, atol=1e-4)


def test_t5_generate_with_eos_for_variable_length_codes():
    codes = random_codes(11, 3, 4, 50, True)
    trie, vocab, tables = make_tables(codes, 4, require_eos=True)
    model = tiny_t5(2 + vocab.n_tokens + 4, seed=2)
    inputs = torch.randint(2, 2 + vocab.n_tokens, (2, 5))
    out = model.generate(
        input_ids=inputs, logits_processor=LogitsProcessorList([TrieLogitsProcessor(tables, prompt_length=1)]),
        num_beams=5, num_return_sequences=5, do_sample=False, length_penalty=0.0,
        max_new_tokens=tables.max_steps, eos_token_id=tables.eos_token_id, pad_token_id=0,
        decoder_start_token_id=0,
    )
    found = sequences_to_items(tables, out, prompt_length=1).view(2, 5)
    assert (found >= 0).all()
    assert all(len(set(row)) == 5 for row in found.tolist())


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_causal_lm_generate_with_arbitrary_token_ids(family):
    codes = random_codes(5, 3, 4, 50, False)
    trie, vocab = CodeTrie(codes), CodeVocab([4, 4, 4])
    gen = torch.Generator().manual_seed(0)
    token_ids = torch.randperm(80, generator=gen)[: vocab.n_tokens] + 20  # ids 20..99, scattered
    tables = TrieTables.build(trie, vocab, token_ids=token_ids, eos_token_id=3, cache=False)
    torch.manual_seed(0)
    if family == "gpt2":
        config = transformers.GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                         bos_token_id=2, eos_token_id=3, pad_token_id=0)
        model = transformers.GPT2LMHeadModel(config).eval()
    else:
        config = transformers.LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                          max_position_embeddings=64, bos_token_id=2, eos_token_id=3,
                                          pad_token_id=0)
        model = transformers.LlamaForCausalLM(config).eval()
    prompt = torch.randint(4, 20, (2, 7))
    out = model.generate(
        input_ids=prompt, attention_mask=torch.ones_like(prompt),
        logits_processor=LogitsProcessorList([TrieLogitsProcessor(tables, prompt_length=prompt.shape[1])]),
        num_beams=6, num_return_sequences=6, do_sample=False, length_penalty=0.0,
        max_new_tokens=tables.max_steps, eos_token_id=3, pad_token_id=0,
    )
    found = sequences_to_items(tables, out, prompt_length=prompt.shape[1]).view(2, 6)
    assert (found >= 0).all()
    assert all(len(set(row)) == 6 for row in found.tolist())
    # the generated tokens are the item's code under the arbitrary mapping
    row = out[0, prompt.shape[1] :]
    code = codes[int(found[0, 0])]
    assert row.tolist() == [int(token_ids[vocab.token_id(level, c)]) for level, c in enumerate(code)]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), variable=st.booleans(), require_eos=st.sampled_from([None, True]))
def test_logits_processor_allows_exactly_the_trie_and_eos_at_complete_codes(seed, variable, require_eos):
    codes = random_codes(seed, 3, 3, 25, variable)
    trie, vocab, tables = make_tables(codes, 3, require_eos=require_eos)
    if not tables.uses_eos and not tables.fixed_length:
        with pytest.raises(ParameterError):
            TrieLogitsProcessor(tables, prompt_length=2)
        return
    processor = TrieLogitsProcessor(tables, prompt_length=2)
    vocab_size = 2 + vocab.n_tokens + 3
    prefixes = {tuple(int(x) for x in c[:d] if x >= 0) for c in codes for d in range(codes.shape[1] + 1)}
    for prefix in sorted(prefixes):
        node = trie.node(prefix)
        complete_leaf = trie.terminal_item[node] >= 0 and len(trie.children(node)[0]) == 0
        tokens = [2 + vocab.token_id(level, i) for level, i in enumerate(prefix)]
        input_ids = torch.tensor([[7, 8] + tokens])
        if complete_leaf and not tables.uses_eos:
            with pytest.raises(ParameterError, match="no token may follow"):
                processor(input_ids, torch.zeros(1, vocab_size))
            continue
        allowed = torch.isfinite(processor(input_ids, torch.zeros(1, vocab_size)))[0].nonzero().flatten().tolist()
        expected = [2 + vocab.token_id(len(prefix), int(i)) for i in trie.children(node)[0]]
        if tables.uses_eos and trie.terminal_item[node] >= 0:
            expected.append(tables.eos_token_id)
        assert allowed == sorted(expected), prefix


def test_logits_processor_raises_on_an_empty_allowed_set():
    codes = np.array([[0, 1], [1, 0]], dtype=np.int32)
    trie, vocab, tables = make_tables(codes, 2)
    assert not tables.uses_eos
    processor = TrieLogitsProcessor(tables, prompt_length=1)
    complete = torch.tensor([[0, 2 + vocab.token_id(0, 0), 2 + vocab.token_id(1, 1)]])
    with pytest.raises(ParameterError, match="no token may follow"):
        processor(complete, torch.zeros(1, 8))
    # the same through generate() when max_new_tokens runs past the code length
    model = tiny_t5(8)
    with pytest.raises(ParameterError, match="max_new_tokens=2"):
        model.generate(
            input_ids=torch.tensor([[2, 3]]), logits_processor=LogitsProcessorList([processor]), num_beams=2,
            do_sample=False, max_new_tokens=3, min_new_tokens=3, eos_token_id=1, pad_token_id=0,
            decoder_start_token_id=0,
        )
    with pytest.raises(ParameterError, match="require_eos=True"):
        TrieLogitsProcessor(make_tables(np.array([[0, -1], [1, 1]], dtype=np.int32), 2)[2], prompt_length=1)
