"""Making a causal LM trainable: LoRA (with trainable code-token rows) or full tuning.

Under plain LoRA the rows of newly added tokens never change (ANCHORS pitfall 5):
they sit in the frozen embedding and output matrices. peft's
``trainable_token_indices`` trains exactly those rows (for the input embedding,
and for the output layer when it is not tied to it), and saves only them with
the adapter, so the adapter stays small and loads with ``PeftModel``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from semid.errors import ParameterError

__all__ = ["TUNING_METHODS", "make_trainable", "trainable_parameter_count"]

logger = logging.getLogger(__name__)

TUNING_METHODS = ("lora", "full")
#: Projection names LC-Rec adapts in LLaMA-style models.
_LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _module_name(model, module) -> str:
    for name, candidate in model.named_modules():
        if candidate is module:
            return name.rsplit(".", 1)[-1]
    raise ParameterError(f"module {type(module).__name__} not found in the model")


def make_trainable(
    model,
    new_token_ids: Sequence[int],
    *,
    method: str = "lora",
    r: int = 8,
    alpha: int | None = None,
    dropout: float = 0.05,
    target_modules: Sequence[str] | None = None,
    activation_checkpointing: bool = False,
):
    """Return the model to train: a ``PeftModel`` (``method="lora"``) or ``model`` itself.

    Args:
        new_token_ids: tokenizer ids of the added code tokens (their embedding rows,
            and output rows when untied, are trained under LoRA).
        r, alpha, dropout: LoRA rank, scale (default ``2 * r``) and dropout.
        target_modules: linear layers to adapt (default: the LLaMA projections when
            present, else every linear layer).
        activation_checkpointing: keep only each decoder layer's input for the
            backward pass and recompute the rest (about a third more compute, a
            small fraction of the activation memory: what makes a 7B model's
            long-prompt micro-batches fit one GPU). It turns the KV cache off in
            training, so methods that reuse a cached prompt (S-DPO) cannot take it.

    Raises:
        ParameterError: unknown method or a rank below 1.
    """
    if method not in TUNING_METHODS:
        raise ParameterError(f"unknown tuning method {method!r}; valid: {', '.join(TUNING_METHODS)}")
    if activation_checkpointing:
        # Non-reentrant: gradients reach LoRA weights without marking the embeddings' output as requiring grad.
        # Only training-mode passes recompute; evaluation and generation (model.eval()) keep their cache.
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x's name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if method == "full":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model
    if r < 1:
        raise ParameterError(f"LoRA rank must be >= 1, got {r}")
    from peft import LoraConfig, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    if target_modules is None:
        present = [t for t in _LLAMA_TARGETS if t in names]
        target_modules = present or "all-linear"
    ids = sorted(int(i) for i in new_token_ids)
    token_targets = {_module_name(model, model.get_input_embeddings()): ids}
    output = model.get_output_embeddings()
    tied = output is None or output.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    if not tied:
        token_targets[_module_name(model, output)] = ids
    config = LoraConfig(
        r=r,
        lora_alpha=alpha if alpha is not None else 2 * r,
        lora_dropout=dropout,
        target_modules=list(target_modules) if not isinstance(target_modules, str) else target_modules,
        # No new tokens (a title-only method such as TALLRec): nothing but LoRA trains.
        trainable_token_indices=token_targets if ids else None,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    trainable, total = trainable_parameter_count(peft_model)
    logger.info("LoRA r=%d on %s; %d code-token rows trainable (tied output: %s); %d / %d parameters trainable",
                r, target_modules, len(ids), tied, trainable, total)
    return peft_model


def trainable_parameter_count(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
