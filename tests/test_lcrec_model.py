"""LC-Rec model plumbing with a tiny random LLaMA: code tokens, LoRA, loss, base-model errors."""

from __future__ import annotations

import json

import pytest
import torch

from _lcrec_tiny import lcrec_dataset, lcrec_index, tiny_config, tiny_model_dir, tiny_untied_dir  # noqa: F401
from semid.errors import CodeFormatError, ParameterError
from semid.gen.llm.base_model import load_causal_lm
from semid.gen.llm.code_tokens import add_code_tokens, code_token_ids
from semid.gen.llm.loss import response_loss


def test_code_tokens_become_single_ids(tiny_model_dir, lcrec_index):
    model, tokenizer = load_causal_lm(tiny_model_dir)
    old_rows = model.get_input_embeddings().weight.shape[0]
    mapping = add_code_tokens(model, tokenizer, lcrec_index.vocab, init="mean")
    assert mapping.shape == (lcrec_index.vocab.n_tokens,)
    assert len(set(mapping.tolist())) == lcrec_index.vocab.n_tokens
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) == old_rows + lcrec_index.vocab.n_tokens
    code = lcrec_index.render(lcrec_index.item_ids[0])
    assert tokenizer.encode(code + code, add_special_tokens=False) == [int(mapping[lcrec_index.codes[0, 0]])] * 2
    embed = model.get_input_embeddings().weight
    assert torch.allclose(embed[mapping[0]], embed[:old_rows].mean(0), atol=1e-6)
    # adding again is a no-op with the same ids
    again = add_code_tokens(model, tokenizer, lcrec_index.vocab, init="mean")
    assert torch.equal(again, mapping)


def test_text_init_uses_item_titles(tiny_model_dir, lcrec_index, lcrec_dataset):
    model, tokenizer = load_causal_lm(tiny_model_dir)
    mapping = add_code_tokens(model, tokenizer, lcrec_index.vocab, init="text", index=lcrec_index,
                              items=lcrec_dataset.items)
    embed = model.get_input_embeddings().weight
    item = lcrec_index.item_ids[0]
    title_ids = tokenizer.encode(lcrec_dataset.items[item]["title"], add_special_tokens=False)[:32]
    expected = embed[torch.tensor(title_ids)].mean(0)
    assert torch.allclose(embed[mapping[int(lcrec_index.codes[0, 0])]], expected, atol=1e-5)


def test_split_code_token_is_rejected(tiny_model_dir, lcrec_index):
    _, tokenizer = load_causal_lm(tiny_model_dir)  # code tokens never added
    with pytest.raises(CodeFormatError, match="split by the tokenizer"):
        code_token_ids(tokenizer, lcrec_index.vocab.tokens()[:3])


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_untied_dir"])
def test_lora_trains_code_token_rows(request, fixture, lcrec_index):
    """ANCHORS pitfall 5: under LoRA the new rows must change, the old rows must not."""
    from semid.gen.lcrec.train import build_model

    model, tokenizer, mapping = build_model(tiny_config(request.getfixturevalue(fixture)), lcrec_index)
    base = model.get_base_model()

    def rows():  # input rows, output rows (through peft's wrappers), each (V, H)
        every = torch.arange(len(tokenizer))
        eye = torch.eye(base.config.hidden_size)
        return base.get_input_embeddings()(every).detach().clone(), base.get_output_embeddings()(eye).T.detach().clone()

    before_in, before_out = rows()
    ids = torch.cat([torch.tensor([[5, 6, 7]]), mapping[:4].unsqueeze(0)], dim=1)
    labels = ids.clone()
    labels[:, :3] = -100
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    response_loss(model, ids, torch.ones_like(ids), labels).backward()
    optimizer.step()
    after_in, after_out = rows()
    changed_in = (after_in != before_in).any(dim=1)
    changed_out = (after_out != before_out).any(dim=1)
    # Inputs 0..2 of the code tokens feed labelled predictions; all 4 are targets.
    assert changed_in[mapping[:3]].all()
    assert changed_out[mapping[:4]].all()
    assert not changed_in[: mapping.min()].any()
    assert not changed_out[: mapping.min()].any()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_" in n for n in trainable)
    assert any("trainable_tokens" in n and "embed_tokens" in n for n in trainable)
    if fixture == "tiny_untied_dir":
        assert any("trainable_tokens" in n and "lm_head" in n for n in trainable)


def test_full_tuning_trains_everything(tiny_model_dir, lcrec_index):
    from semid.gen.lcrec.train import build_model

    model, _, _ = build_model(tiny_config(tiny_model_dir, method="full"), lcrec_index)
    assert all(p.requires_grad for p in model.parameters())


def test_response_loss_equals_model_loss(tiny_model_dir, lcrec_index):
    from semid.gen.lcrec.train import build_model

    model, _, _ = build_model(tiny_config(tiny_model_dir, lora_dropout=0.0), lcrec_index)
    model.eval()
    ids = torch.randint(0, 400, (2, 9))
    labels = ids.clone()
    labels[:, :5] = -100
    mask = torch.ones_like(ids)
    expected = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert torch.allclose(response_loss(model, ids, mask, labels), expected, atol=1e-5)


def test_missing_base_model(tmp_path):
    with pytest.raises(ParameterError, match="base model path not found"):
        load_causal_lm(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="no config.json"):
        load_causal_lm(tmp_path / "empty")


def test_base_model_that_is_not_a_causal_lm(tmp_path):
    from transformers import DistilBertConfig

    DistilBertConfig(vocab_size=50, dim=8, n_layers=1, n_heads=1, hidden_dim=16).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "distilbert"
    with pytest.raises(ParameterError, match="not a causal language model"):
        load_causal_lm(tmp_path)


def test_causal_lm_folder_without_weights(tmp_path, tiny_model_dir):
    import shutil

    shutil.copy(tiny_model_dir / "config.json", tmp_path / "config.json")
    with pytest.raises(ParameterError, match="cannot load"):
        load_causal_lm(tmp_path)


def test_max_length_beyond_context_is_refused(tmp_path, lcrec_dataset, lcrec_index):
    from _lcrec_tiny import build_tiny_model, dataset_texts
    from semid.gen.lcrec.train import build_model

    small = build_tiny_model(tmp_path / "m", dataset_texts(lcrec_dataset), context=64)
    with pytest.raises(ParameterError, match="exceeds the model's context"):
        build_model(tiny_config(small, max_length=128), lcrec_index)


def test_diagnostic_nll_is_the_training_loss_of_the_code_tokens(tmp_path, lcrec_dataset, lcrec_index, tiny_model_dir):
    """The diagnostics score exactly what training optimises: the training encoder's response
    (code tokens) after the training prompt, under the training loss, equals the diagnostic NLL."""
    import torch

    from semid.evaluation import leave_one_out
    from semid.gen.lcrec import train_lcrec
    from semid.gen.lcrec.diagnostics import position_nll
    from semid.gen.lcrec.encoding import collate_for_training, encode_examples
    from semid.gen.lcrec.run import load_lcrec_run
    from semid.gen.lcrec.tasks import Example
    from semid.gen.llm.loss import response_loss

    config = tiny_config(tiny_model_dir, tasks=("seqrec",), max_per_task=8)
    train_lcrec(lcrec_dataset, lcrec_index, tmp_path / "run", config, progress=False)
    recommender = load_lcrec_run(tmp_path / "run")
    case = leave_one_out(lcrec_dataset).valid[3]
    per_position = position_nll(recommender, [case])["full_vocab"]
    example = Example("seqrec", recommender.template, lcrec_index.render(case.target),
                      history=tuple(lcrec_index.render(i) for i in case.history))
    batch = collate_for_training(encode_examples([example], recommender.formatter, config.max_length),
                                 recommender.tokenizer.pad_token_id)
    labels = batch["labels"].clone()
    labelled = (labels[0] != -100).nonzero().flatten()
    labels[0, labelled[-1]] = -100  # the EOS after the code is not a code position
    with torch.no_grad():
        loss = response_loss(recommender.model, batch["input_ids"], batch["attention_mask"], labels)
    assert len(labelled) - 1 == len(per_position)
    assert float(loss) == pytest.approx(sum(per_position) / len(per_position), rel=1e-4)


def test_a_device_the_machine_lacks_or_a_bad_dtype_is_one_clear_error(tiny_model_dir):
    with pytest.raises(ParameterError, match="cannot place the base model on device 'cuda:7'"):
        load_causal_lm(tiny_model_dir, device="cuda:7")
    with pytest.raises(ParameterError, match="dtype must be float32, bfloat16 or float16"):
        load_causal_lm(tiny_model_dir, dtype="int8")
    model, _ = load_causal_lm(tiny_model_dir, dtype="bfloat16")
    assert next(model.parameters()).dtype.__str__() == "torch.bfloat16"


def test_labelled_logprob_sums_equal_the_full_logits(tiny_model_dir, lcrec_index):
    from semid.gen.lcrec.train import build_model
    from semid.gen.llm.loss import labelled_logprob_sums

    model, _, _ = build_model(tiny_config(tiny_model_dir, lora_dropout=0.0), lcrec_index)
    model.eval()
    ids = torch.randint(0, 400, (3, 9))
    labels = torch.full_like(ids, -100)
    labels[0, 5:] = ids[0, 5:]
    labels[1, 2:4] = ids[1, 2:4]  # row 2 has no labels: its sum is 0
    mask = torch.ones_like(ids)
    logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
    expected = torch.stack([
        sum((logp[r, t - 1, ids[r, t]] for t in range(9) if labels[r, t] != -100), torch.tensor(0.0))
        for r in range(3)
    ])
    got = labelled_logprob_sums(model, ids, mask, labels)
    assert got.shape == (3,)
    assert torch.allclose(got, expected, atol=1e-4)


def test_losses_from_inputs_embeds_equal_those_from_token_ids(tiny_model_dir, lcrec_index):
    """LLaRA feeds embeddings, not ids: both loss paths must accept them and agree with the id path."""
    from semid.gen.lcrec.train import build_model
    from semid.gen.llm.loss import labelled_logprob_sums, response_loss

    model, _, _ = build_model(tiny_config(tiny_model_dir, lora_dropout=0.0), lcrec_index)
    model.eval()
    ids = torch.randint(0, 400, (2, 7))
    labels = torch.full_like(ids, -100)
    labels[:, 4:] = ids[:, 4:]
    mask = torch.ones_like(ids)
    embeds = model.get_input_embeddings()(ids)
    full = torch.nn.functional.cross_entropy(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
                                             .transpose(1, 2), labels[:, 1:], ignore_index=-100)
    assert torch.allclose(response_loss(model, None, mask, labels, inputs_embeds=embeds), full, atol=1e-5)
    assert torch.allclose(labelled_logprob_sums(model, None, mask, labels, inputs_embeds=embeds),
                          labelled_logprob_sums(model, ids, mask, labels), atol=1e-4)
    with pytest.raises(ValueError, match="exactly one"):
        response_loss(model, ids, mask, labels, inputs_embeds=embeds)


def test_shared_prompt_logprob_sums_equal_one_row_per_answer_with_gradients(tiny_model_dir, lcrec_index):
    """S-DPO scores K + 1 answers of one prompt: one prompt pass with a repeated cache must give the
    same sums, and the same gradients, as one full row per answer."""
    from semid.gen.lcrec.train import build_model
    from semid.gen.llm.loss import labelled_logprob_sums, shared_prompt_logprob_sums

    model, _, _ = build_model(tiny_config(tiny_model_dir, lora_dropout=0.0), lcrec_index)
    model.eval()
    prompt = torch.randint(0, 400, (7,)).tolist()
    answers = [[5, 9, 11], [7], [3, 4]]
    rows = torch.zeros((3, 10), dtype=torch.long)
    mask = torch.zeros_like(rows)
    labels = torch.full_like(rows, -100)
    for r, answer in enumerate(answers):
        rows[r, : 7 + len(answer)] = torch.tensor(prompt + answer)
        mask[r, : 7 + len(answer)] = 1
        labels[r, 7 : 7 + len(answer)] = torch.tensor(answer)
    trainable = [p for p in model.parameters() if p.requires_grad]
    expected = labelled_logprob_sums(model, rows, mask, labels)
    expected_grads = torch.autograd.grad(expected.sum(), trainable, allow_unused=True)
    got = shared_prompt_logprob_sums(model, prompt, answers)
    grads = torch.autograd.grad(got.sum(), trainable, allow_unused=True)
    assert torch.allclose(got, expected, atol=1e-4)
    for g, e in zip(grads, expected_grads):
        if e is not None:
            assert g is not None and torch.allclose(g, e, atol=1e-4)


def test_chunked_head_equals_one_pass_in_value_and_gradients(tiny_model_dir, lcrec_index, monkeypatch):
    """Above HEAD_CHUNK labelled positions the output layer is recomputed per chunk: same loss, same grads."""
    from semid.gen.lcrec.train import build_model
    from semid.gen.llm import loss as loss_module

    model, _, _ = build_model(tiny_config(tiny_model_dir, lora_dropout=0.0), lcrec_index)
    model.eval()
    ids = torch.randint(0, 400, (3, 11))
    labels = ids.clone()
    labels[1, :4] = -100
    mask = torch.ones_like(ids)
    trainable = [p for p in model.parameters() if p.requires_grad]

    def value_and_grads(chunk):
        monkeypatch.setattr(loss_module, "HEAD_CHUNK", chunk)
        model.zero_grad(set_to_none=True)
        value = loss_module.response_loss(model, ids, mask, labels)
        value.backward()
        return value.detach(), [p.grad.clone() for p in trainable]

    one_value, one_grads = value_and_grads(10_000)
    chunked_value, chunked_grads = value_and_grads(7)  # 24 labelled positions: chunks of 7, 7, 7, 3
    expected = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert torch.allclose(one_value, expected, atol=1e-5)
    assert torch.allclose(chunked_value, one_value, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(one_grads, chunked_grads))


def test_last_position_logits_equal_the_models_last_logits(tiny_model_dir, lcrec_index):
    from semid.gen.lcrec.train import build_model
    from semid.gen.llm.loss import last_position_logits

    model, _, _ = build_model(tiny_config(tiny_model_dir, lora_dropout=0.0), lcrec_index)
    model.eval()
    ids = torch.randint(0, 400, (2, 6))
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # left padding
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits[:, -1].float()
        got = last_position_logits(model, ids, mask)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)


def test_activation_checkpointing_changes_memory_not_the_gradients(tiny_model_dir):
    """TALLRec / LLaRA / InstructRec's ``activation_checkpointing``: recomputed layers give the same step."""
    from semid.gen.llm.adapters import make_trainable

    ids = torch.randint(0, 400, (2, 10))
    labels = ids.clone()
    labels[:, :6] = -100
    mask = torch.ones_like(ids)

    def lora_grads(checkpointing):
        torch.manual_seed(0)
        model, _ = load_causal_lm(tiny_model_dir)
        model = make_trainable(model, [], r=4, dropout=0.0, activation_checkpointing=checkpointing)
        model.train()
        for name, p in model.named_parameters():  # LoRA's B starts at zero; give it values so A gets gradients too
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.02, generator=torch.Generator().manual_seed(len(name)))
        value = response_loss(model, ids, mask, labels)
        value.backward()
        assert model.get_base_model().model.gradient_checkpointing is checkpointing
        return value.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    plain_value, plain = lora_grads(False)
    recomputed_value, recomputed = lora_grads(True)
    assert torch.allclose(plain_value, recomputed_value, atol=1e-6)
    assert plain.keys() == recomputed.keys() and plain
    assert all(torch.allclose(plain[n], recomputed[n], atol=1e-6) for n in plain)
