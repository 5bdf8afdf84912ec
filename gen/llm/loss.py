"""Next-token loss computed only where there are labels.

A causal LM's own ``forward(labels=...)`` scores every position against the
whole vocabulary. Instruction tuning supervises only the short responses, and
with tens of thousands of added code tokens the output layer is a large part
of the cost, so :func:`response_loss` runs the decoder body, gathers the hidden
states of supervised positions and applies the output layer to those alone.
The result equals the model's own mean cross-entropy over labelled tokens.
"""

from __future__ import annotations

__all__ = ["labelled_logprob_sums", "loss_module", "response_loss"]

IGNORE_INDEX = -100


def _body_and_head(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base = getattr(base, "module", base)  # DDP wrapper
    body = base.get_decoder() if hasattr(base, "get_decoder") else None
    head = base.get_output_embeddings()
    return body, head


def response_loss(model, input_ids, attention_mask, labels):
    """Mean cross-entropy of ``labels`` (``int64 (B, T)``, ``-100`` = ignored) under ``model``.

    ``labels[b, t]`` is the token expected *at* position ``t`` (as for
    transformers' ``labels``): position ``t - 1``'s logits predict it.
    Falls back to ``model(..., labels=labels).loss`` for models without a
    separable decoder body.
    """
    import torch

    body, head = _body_and_head(model)
    device = next(model.parameters()).device  # batches are built on the CPU
    input_ids, attention_mask, labels = input_ids.to(device), attention_mask.to(device), labels.to(device)
    if body is None or head is None:
        return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
    hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
    target = labels[:, 1:]
    keep = target != IGNORE_INDEX
    selected = hidden[:, :-1][keep]  # (N, H)
    logits = head(selected).float()  # (N, V)
    return torch.nn.functional.cross_entropy(logits, target[keep])


def labelled_logprob_sums(model, input_ids, attention_mask, labels):
    """Summed log-probability of each row's labelled tokens: ``float (B,)``, with gradients.

    Same conventions as :func:`response_loss` (``labels`` ``int64 (B, T)``, -100 ignored).
    Preference losses (S-DPO) need one sum per answer; computing them from the model's
    own logits materialises ``(B, T, V)`` floats (about 5 GB for 32 rows of 800 tokens and
    a 49k vocabulary), so only the labelled positions go through the output layer.
    """
    import torch

    body, head = _body_and_head(model)
    device = next(model.parameters()).device
    input_ids, attention_mask, labels = input_ids.to(device), attention_mask.to(device), labels.to(device)
    target = labels[:, 1:]
    keep = target != IGNORE_INDEX
    if body is None or head is None:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][keep].float()
    else:
        hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = head(hidden[:, :-1][keep]).float()  # (N, V)
    picked = torch.log_softmax(logits, dim=-1).gather(1, target[keep].unsqueeze(1)).squeeze(1)  # (N,)
    rows = keep.nonzero()[:, 0]
    return torch.zeros(input_ids.shape[0], dtype=picked.dtype, device=device).index_add(0, rows, picked)


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
