"""Train LC-Rec: a causal LM tuned on alignment tasks over an index's code tokens.

``train_lcrec`` runs in one process or under ``accelerate launch`` (DDP; each
process takes its share of every global batch). Progress is checkpointed
atomically every ``checkpoint_minutes`` (and at the end of each epoch), so a
killed run continues with ``resume=True`` from its last checkpoint with the same
data order. ``budget_minutes`` bounds the training time summed over resumes;
when it runs out the model trained so far is saved and the run is marked as
stopped by the budget.

Run directory (see :mod:`semid.gen.runs`), plus ``model/`` written atomically
at the end::

    model/lcrec.json      token ids of the code tokens, EOS id, prompt set, outcome
    model/tokenizer/      the base tokenizer with the code tokens added
    model/adapter/        peft LoRA adapter (adapter_config.json + safetensors), or
    model/full/           the whole fine-tuned model (method="full")
    model/index/          a copy of the index the run was trained on
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any

from semid._io import atomic_directory, write_json
from semid.data.dataset import Dataset, load_dataset
from semid.errors import DataError, ParameterError
from semid.evaluation.split import leave_one_out

from .checkpoint import load_training_state, save_training_state
from .config import RESUMABLE_KEYS, LCRecConfig
from .encoding import PromptFormatter, collate_for_training, encode_examples
from .tasks import build_examples
from .templates import load_prompts

__all__ = ["MODEL_TYPE", "build_model", "train_lcrec"]

logger = logging.getLogger(__name__)

MODEL_TYPE = "lcrec"


def _load_index(index):
    from semid.registry import load as load_index

    return (load_index(index), str(index)) if isinstance(index, (str, os.PathLike)) else (index, "<in memory>")


def _check_coverage(dataset: Dataset, index) -> None:
    known = set(index.item_ids_)
    for user, seq in zip(dataset.sequences.user_ids, dataset.sequences.items):
        for item in seq:
            if item not in known:
                raise DataError(
                    f"user {user!r} of dataset {dataset.name!r} has item {item!r}, which the index "
                    f"does not hold; build the index on this dataset"
                )


def build_model(config: LCRecConfig, index, items=None):
    """Base model + tokenizer with code tokens added and the tuning method applied.

    Returns:
        ``(model, tokenizer, token_map)`` where ``token_map`` is ``LongTensor
        (vocab.n_tokens,)``: the tokenizer id of each vocab token id.
    """
    import torch

    from semid.gen.llm.adapters import make_trainable
    from semid.gen.llm.base_model import load_causal_lm
    from semid.gen.llm.code_tokens import add_code_tokens

    torch.manual_seed(config.seed)
    model, tokenizer = load_causal_lm(config.base_model, dtype=config.dtype)
    token_map = add_code_tokens(model, tokenizer, index.vocab, init=config.embed_init, index=index, items=items)
    context = getattr(model.config, "max_position_embeddings", None)
    if context is not None and config.max_length > context:
        raise ParameterError(f"max_length {config.max_length} exceeds the model's context of {context} tokens")
    model = make_trainable(
        model, token_map.tolist(), method=config.method, r=config.lora_r, alpha=config.lora_alpha,
        dropout=config.lora_dropout,
    )
    return model, tokenizer, token_map


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def train_lcrec(
    data: str | os.PathLike[str] | Dataset,
    index,
    out: str | os.PathLike[str],
    config: LCRecConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    checkpoint_steps: int | None = None,
    stop_after_steps: int | None = None,
) -> dict[str, Any]:
    """Train LC-Rec into the run directory ``out``; returns the outcome (also in ``model/lcrec.json``).

    Args:
        data: dataset directory, ``builtin:NAME`` or a loaded :class:`Dataset`.
        index: index directory or a fitted :class:`semid.ItemTokenizer`.
        checkpoint_steps: also checkpoint every this many optimizer steps.
        stop_after_steps: end this invocation after this many optimizer steps
            (after checkpointing; the run stays resumable) - for tests and smoke runs.

    Raises:
        ParameterError: bad settings (empty task list, a base model that is not a
            causal LM, max_length beyond the model's context).
        ArtifactError: ``out`` exists without ``resume``/``overwrite``, or a resume
            with another index or other settings.
        CodeFormatError: a code token the tokenizer splits.
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import broadcast
    from tqdm.auto import tqdm

    from semid.gen.runs import create_run, open_run

    started = time.perf_counter()
    # Without a GPU, processes started by `accelerate launch`/`torchrun` only join
    # a (gloo) process group when accelerate is told to run on the CPU.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    index, index_path = _load_index(index)
    _check_coverage(dataset, index)
    prompts = load_prompts(config.prompts)
    out = Path(out)
    if accelerator.is_main_process:
        run = create_run(
            out, model_type=MODEL_TYPE, config=config.to_dict(), index_path=index_path,
            fingerprint=index.fingerprint, data=str(dataset.path or dataset.name), resume=resume,
            overwrite=overwrite, resumable_keys=RESUMABLE_KEYS,
        )
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        run = open_run(out)

    model, tokenizer, token_map = build_model(config, index, dataset.items)
    formatter = PromptFormatter(tokenizer, prompts)
    split = leave_one_out(dataset, max_history=config.max_history)
    examples = build_examples(
        dataset, index, split, prompts, config.tasks, seed=config.seed, max_per_task=config.max_per_task,
        max_history=config.max_history,
    )
    encoded = encode_examples(examples, formatter, config.max_length)
    if not encoded:
        raise DataError(f"dataset {dataset.name!r} gave no LC-Rec training examples for tasks {list(config.tasks)}")

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    world, rank = accelerator.num_processes, accelerator.process_index
    global_batch = config.batch_size * world
    steps_per_epoch = math.ceil(len(encoded) / global_batch)
    total_steps = steps_per_epoch * config.epochs
    warmup = max(1, int(config.warmup_ratio * total_steps))

    state = {"epoch": 0, "batch": 0, "step": 0, "elapsed_seconds": 0.0, "loss": None}
    restored = load_training_state(run, model, optimizer) if resume else None
    if restored is not None:
        state.update({k: restored[k] for k in state if k in restored})
        logger.info("resuming %s at epoch %d, batch %d (step %d)", out, state["epoch"], state["batch"], state["step"])
        if accelerator.is_main_process:
            run.log("resume", step=state["step"], epoch=state["epoch"])
    elif accelerator.is_main_process:
        run.log("start", examples=len(encoded), steps=total_steps, processes=world,
                tasks={t: sum(e.task == t for e in encoded) for t in config.tasks})
    from semid.gen.llm.loss import loss_module

    peft_or_full = model
    model, optimizer = accelerator.prepare(loss_module(model), optimizer)
    model.train()

    pad_id = tokenizer.pad_token_id
    micro = config.batch_size // config.grad_accum
    budget_s = config.budget_minutes * 60 if config.budget_minutes is not None else None
    session_start = time.perf_counter()
    base_elapsed = float(state["elapsed_seconds"])
    last_checkpoint = time.perf_counter()
    stopped_by_budget = False
    steps_this_session = 0
    bar = tqdm(total=total_steps, initial=state["step"], desc="lcrec", unit="step",
               disable=not (progress and accelerator.is_main_process))

    def checkpoint() -> None:
        state["elapsed_seconds"] = base_elapsed + time.perf_counter() - session_start
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            save_training_state(run, peft_or_full, optimizer, dict(state))
        accelerator.wait_for_everyone()

    halt = False
    while state["epoch"] < config.epochs and not halt:
        order = list(range(len(encoded)))
        random.Random(config.seed * 1_000_003 + state["epoch"]).shuffle(order)
        while state["batch"] < steps_per_epoch:
            start = state["batch"] * global_batch
            positions = [order[(start + j) % len(order)] for j in range(global_batch)]
            mine = positions[rank * config.batch_size : (rank + 1) * config.batch_size]
            factor = _lr_factor(state["step"], total_steps, warmup)
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate * factor
            total_loss = 0.0
            for a in range(config.grad_accum):
                batch = collate_for_training([encoded[i] for i in mine[a * micro : (a + 1) * micro]], pad_id)
                batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                sync = a == config.grad_accum - 1
                context = accelerator.no_sync(model) if not sync and world > 1 else contextlib.nullcontext()
                with context:
                    loss = model(**batch) / config.grad_accum
                    accelerator.backward(loss)
                total_loss += float(loss.detach())
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state["batch"] += 1
            state["step"] += 1
            steps_this_session += 1
            state["loss"] = total_loss if state["loss"] is None else 0.95 * state["loss"] + 0.05 * total_loss
            bar.update(1)
            bar.set_postfix(loss=f"{state['loss']:.3f}")
            now = time.perf_counter()
            flags = torch.tensor([
                float(budget_s is not None and base_elapsed + now - session_start >= budget_s),
                float(now - last_checkpoint >= config.checkpoint_minutes * 60
                      or (checkpoint_steps is not None and state["step"] % checkpoint_steps == 0)),
                float(stop_after_steps is not None and steps_this_session >= stop_after_steps),
            ], device=accelerator.device)
            flags = broadcast(flags, from_process=0)
            if state["step"] % 50 == 0 and accelerator.is_main_process:
                run.log("progress", step=state["step"], epoch=state["epoch"], loss=round(state["loss"], 4))
            if flags[1] or flags[2]:
                checkpoint()
                last_checkpoint = time.perf_counter()
            if flags[0]:
                stopped_by_budget = True
                halt = True
                break
            if flags[2]:
                bar.close()
                logger.info("stopping after %d steps as asked; resume with --resume", steps_this_session)
                return {"finished": False, "step": state["step"], "resumable": True}
        if not halt:
            state["epoch"] += 1
            state["batch"] = 0
            if accelerator.is_main_process:
                run.log("epoch", epoch=state["epoch"], step=state["step"], loss=round(state["loss"], 4))
        checkpoint()
        last_checkpoint = time.perf_counter()
    bar.close()

    outcome = {
        "finished": state["epoch"] >= config.epochs,
        "stopped_by_budget": stopped_by_budget,
        "steps": state["step"],
        "total_steps": total_steps,
        "epochs_completed": state["epoch"] + state["batch"] / steps_per_epoch,
        "train_seconds": round(base_elapsed + time.perf_counter() - session_start, 1),
        "wall_seconds_this_session": round(time.perf_counter() - started, 1),
        "examples": len(encoded),
        "processes": world,
        "final_loss_ema": state["loss"],
    }
    if stopped_by_budget:
        logger.warning("time budget of %.1f min used up after %d of %d steps; saving the model trained so far",
                       config.budget_minutes, state["step"], total_steps)
    if accelerator.is_main_process:
        _save_model(out, peft_or_full, tokenizer, index, token_map, formatter, prompts,
                    config, outcome)
        run.log("stop", **outcome)
    accelerator.wait_for_everyone()
    return outcome


def _save_model(out: Path, model, tokenizer, index, token_map, formatter, prompts, config, outcome) -> None:
    with atomic_directory(out / "model", overwrite=True) as staging:
        if config.method == "lora":
            # The code-token rows travel as trainable tokens; the rest of the resized
            # embedding equals the base model, so it is not copied into the adapter.
            model.save_pretrained(staging / "adapter", save_embedding_layers=False)
        else:
            model.save_pretrained(staging / "full")
        tokenizer.save_pretrained(staging / "tokenizer")
        index.save(staging / "index")
        write_json(staging / "lcrec.json", {
            "format": "semid-lcrec-model",
            "format_version": 1,
            "method": config.method,
            "base_model": str(config.base_model) if config.base_model else None,
            "code_token_ids": [int(i) for i in token_map.tolist()],
            "eos_token_id": formatter.eos_token_id,
            "chat_template": formatter.use_chat,
            "prompts": {"name": config.prompts, "version": prompts.version, "sha256": prompts.sha256},
            "index_fingerprint": index.fingerprint,
            "outcome": outcome,
        })
