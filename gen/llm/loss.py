"""Next-token loss computed only where there are labels.

A causal LM's own ``forward(labels=...)`` scores every position against the
whole vocabulary. Instruction tuning supervises only the short responses, and
with tens of thousands of added code tokens the output layer is a large part
of the cost, so :func:`response_loss` runs the decoder body, gathers the hidden
states of supervised positions and applies the output layer to those alone.
The result equals the model's own mean cross-entropy over labelled tokens.

When nearly every position is supervised (TALLRec trains on the whole prompt, as
its reference does), even the gathered ``(N, V)`` logits are large: 32 rows of
512 tokens and a 49k vocabulary hold 3.2 GB in float32, and autograd keeps them
plus their softmax for the backward pass. Above ``HEAD_CHUNK`` positions the
output layer therefore runs over chunks whose logits are recomputed during the
backward pass instead of stored (activation checkpointing of the head alone),
so the peak is one chunk's logits whatever ``N`` is.
"""

from __future__ import annotations

__all__ = ["labelled_logprob_sums", "last_position_logits", "loss_module", "response_loss",
           "shared_prompt_logprob_sums"]

IGNORE_INDEX = -100
HEAD_CHUNK = 2048  # labelled positions per output-layer pass: 2048 x 49k floats = 0.4 GB


def _chunked_cross_entropy(head, selected, target, chunk: int):
    """Mean cross-entropy of ``head(selected)`` (``selected`` ``float (N, H)``) against ``target`` (``int64 (N,)``).

    Beyond ``chunk`` rows the logits of each chunk are recomputed in the backward
    pass (``torch.utils.checkpoint``), so at most one chunk's ``(chunk, V)`` logits
    is alive at a time; the value and the gradients equal the one-pass computation.
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    def summed(hidden, labels):
        return torch.nn.functional.cross_entropy(head(hidden).float(), labels, reduction="sum")

    n = selected.shape[0]
    if n <= chunk:
        return summed(selected, target) / max(n, 1)
    total = sum(checkpoint(summed, selected[s : s + chunk], target[s : s + chunk], use_reentrant=False)
                for s in range(0, n, chunk))
    return total / n


def _body_and_head(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base = getattr(base, "module", base)  # DDP wrapper
    body = base.get_decoder() if hasattr(base, "get_decoder") else None
    head = base.get_output_embeddings()
    return body, head


def _inputs(model, input_ids, attention_mask, labels, inputs_embeds):
    """Move a batch to the model's device; exactly one of ``input_ids`` / ``inputs_embeds`` is given."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids and inputs_embeds")
    device = next(model.parameters()).device  # batches are built on the CPU
    inputs = {"attention_mask": attention_mask.to(device)}
    if input_ids is not None:
        inputs["input_ids"] = input_ids.to(device)
    else:
        inputs["inputs_embeds"] = inputs_embeds.to(device)
    return inputs, labels.to(device)


def response_loss(model, input_ids, attention_mask, labels, *, inputs_embeds=None):
    """Mean cross-entropy of ``labels`` (``int64 (B, T)``, ``-100`` = ignored) under ``model``.

    ``labels[b, t]`` is the token expected *at* position ``t`` (as for
    transformers' ``labels``): position ``t - 1``'s logits predict it.
    ``inputs_embeds`` (``float (B, T, H)``, with ``input_ids=None``) replaces the
    token ids for models fed embeddings directly (LLaRA's hybrid item tokens).
    Falls back to ``model(..., labels=labels).loss`` for models without a
    separable decoder body.
    """
    import torch

    body, head = _body_and_head(model)
    inputs, labels = _inputs(model, input_ids, attention_mask, labels, inputs_embeds)
    if body is None or head is None:
        return model(**inputs, labels=labels).loss
    hidden = body(**inputs).last_hidden_state  # (B, T, H)
    target = labels[:, 1:]
    keep = target != IGNORE_INDEX
    selected = hidden[:, :-1][keep]  # (N, H)
    return _chunked_cross_entropy(head, selected, target[keep], HEAD_CHUNK)


def last_position_logits(model, input_ids, attention_mask):
    """Logits at each row's last position: ``float (B, V)`` for left-padded ``input_ids`` ``int64 (B, T)``.

    A causal LM's own forward returns ``(B, T, V)`` logits (1.6 GB for 16 rows of 512
    tokens); pointwise scoring (TALLRec's P(Yes)) needs the last position only, so the
    output layer runs on the last hidden state alone.
    """
    body, head = _body_and_head(model)
    device = next(model.parameters()).device
    inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
    if body is None or head is None:
        return model(**inputs).logits[:, -1].float()
    return head(body(**inputs).last_hidden_state[:, -1]).float()


def labelled_logprob_sums(model, input_ids, attention_mask, labels, *, inputs_embeds=None):
    """Summed log-probability of each row's labelled tokens: ``float (B,)``, with gradients.

    Same conventions as :func:`response_loss` (``labels`` ``int64 (B, T)``, -100 ignored,
    ``inputs_embeds`` instead of ``input_ids``).
    Preference losses (S-DPO) need one sum per answer; computing them from the model's
    own logits materialises ``(B, T, V)`` floats (about 5 GB for 32 rows of 800 tokens and
    a 49k vocabulary), so only the labelled positions go through the output layer.
    """
    import torch

    body, head = _body_and_head(model)
    inputs, labels = _inputs(model, input_ids, attention_mask, labels, inputs_embeds)
    target = labels[:, 1:]
    keep = target != IGNORE_INDEX
    if body is None or head is None:
        logits = model(**inputs).logits[:, :-1][keep].float()
    else:
        hidden = body(**inputs).last_hidden_state
        logits = head(hidden[:, :-1][keep]).float()  # (N, V)
    picked = torch.log_softmax(logits, dim=-1).gather(1, target[keep].unsqueeze(1)).squeeze(1)  # (N,)
    rows = keep.nonzero()[:, 0]
    return torch.zeros(labels.shape[0], dtype=picked.dtype, device=labels.device).index_add(0, rows, picked)


def shared_prompt_logprob_sums(model, prompt_ids, answers):
    """Summed log-probability of each answer after one shared prompt: ``float (len(answers),)``, with gradients.

    ``prompt_ids`` (``list[int]``) runs through the model once; its keys and values are
    repeated for the answers (``list[list[int]]``, each non-empty), which run as one
    right-padded batch after it. Equals :func:`labelled_logprob_sums` over the rows
    ``prompt + answer`` with the answers labelled, at about ``1 / len(answers)`` of the
    prompt's cost: preference losses score K + 1 answers of one long prompt (S-DPO), where
    the prompt is nearly all the tokens. Gradients reach the prompt's pass through the cache.
    """
    import inspect

    import torch

    if not answers or any(len(a) == 0 for a in answers):
        raise ValueError("every answer needs at least one token")
    body, head = _body_and_head(model)
    if body is None or head is None:  # no separable body: one row per answer
        from .pairs import pad_pairs

        return labelled_logprob_sums(model, *pad_pairs([(prompt_ids, a) for a in answers], pad_id=0))
    device = next(model.parameters()).device
    first = body(input_ids=torch.tensor([list(prompt_ids)], device=device), use_cache=True)
    cache = first.past_key_values
    cache.batch_repeat_interleave(len(answers))
    width = max(len(a) for a in answers)
    ids = torch.zeros((len(answers), width), dtype=torch.long)
    mask = torch.zeros((len(answers), len(prompt_ids) + width), dtype=torch.long)
    mask[:, : len(prompt_ids)] = 1
    for r, answer in enumerate(answers):  # right padding after the shared prompt
        ids[r, : len(answer)] = torch.tensor(answer, dtype=torch.long)
        mask[r, len(prompt_ids) : len(prompt_ids) + len(answer)] = 1
    # transformers >= 5.2x names the argument `cache` (and warns on `past_key_values`)
    key = "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"
    hidden = body(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False,
                  **{key: cache}).last_hidden_state  # (n, width, H)
    # The prompt's last state predicts every answer's first token; answer position j predicts j + 1.
    first_logp = torch.log_softmax(head(first.last_hidden_state[:, -1]).float(), dim=-1)[0]  # (V,)
    rows = [r for r, a in enumerate(answers) for _ in range(len(a) - 1)]
    cols = [j for a in answers for j in range(len(a) - 1)]
    targets = torch.tensor([t for a in answers for t in a[1:]], dtype=torch.long, device=device)
    total = first_logp[torch.tensor([a[0] for a in answers], device=device)]
    if rows:
        rest = torch.log_softmax(head(hidden[rows, cols]).float(), dim=-1)  # (N, V)
        picked = rest.gather(1, targets.unsqueeze(1)).squeeze(1)
        total = total.index_add(0, torch.tensor(rows, device=device), picked)
    return total


def loss_module(model):
    """``model`` wrapped in a module whose ``forward(input_ids, attention_mask, labels)`` is
    :func:`response_loss`, so data-parallel wrappers (DDP) see the whole computation."""
    import torch

    class _ResponseLoss(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, labels):
            return response_loss(self.inner, input_ids, attention_mask, labels)

    return _ResponseLoss(model)
