"""Train LC-Rec: a causal LM tuned on alignment tasks over an index's code tokens.

``train_lcrec`` runs in one process or under ``accelerate launch`` (DDP; each
process takes its share of every global batch), on the loop every semid trainer
shares (:mod:`semid.gen.training`): ``last`` is checkpointed atomically every
``checkpoint_minutes`` and at every epoch end, so a killed run continues with
``resume=True`` with the same data order; ``budget_minutes`` is the wall time of
this invocation. When training stops (finished, budget) the model trained so far
is exported to ``model/``.

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
from pathlib import Path
from typing import Any

from semid._io import atomic_directory, write_json
from semid.data.dataset import Dataset, load_dataset
from semid.errors import DataError, ParameterError
from semid.evaluation.split import leave_one_out

from ..runs import discard_on_failure, open_or_create_run
from ..llm.lora_state import TrainableStateMixin
from ..training import Budget, Distributed, LoopSettings, Schedule, summarize, train_loop
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
    known = set(index.item_ids)
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


class LCRecTrainable(TrainableStateMixin):
    """LC-Rec's part of the shared loop (:mod:`semid.gen.training`): instruction batches and the response loss.

    Every rank takes its slice of each global batch; the learning rate follows
    linear warm-up then linear decay over all epochs (LC-Rec's schedule). There is no
    validation during training (``eval_every=0``), so ``best`` is the final model.
    """

    name = "lcrec"

    def __init__(self, accelerator, model, loss_model, optimizer, params, encoded, config: LCRecConfig, pad_id: int):
        self.accelerator, self.model, self.loss_model, self.optimizer = accelerator, model, loss_model, optimizer
        self.params, self.encoded, self.config, self.pad_id = params, encoded, config, pad_id
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        self.global_batch = config.batch_size * self.world
        self.steps_per_epoch = math.ceil(len(encoded) / self.global_batch)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.warmup = max(1, int(config.warmup_ratio * self.total_steps))
        self.schedule = Schedule("linear", total_steps=max(self.total_steps, 1), warmup_steps=self.warmup)
        self.step = 0
        self.loss_ema: float | None = None

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = list(range(len(self.encoded)))
        random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
        batches = []
        for b in range(self.steps_per_epoch):
            start = b * self.global_batch
            positions = [order[(start + j) % len(order)] for j in range(self.global_batch)]
            batches.append(positions[self.rank * self.config.batch_size : (self.rank + 1) * self.config.batch_size])
        return batches

    def train_step(self, mine: list[int]) -> tuple[float, int]:
        import torch

        config = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = config.learning_rate * self.schedule(self.step)
        micro = config.batch_size // config.grad_accum
        total_loss = 0.0
        for a in range(config.grad_accum):
            batch = collate_for_training([self.encoded[i] for i in mine[a * micro : (a + 1) * micro]], self.pad_id)
            batch = {k: v.to(self.accelerator.device) for k, v in batch.items()}
            sync = a == config.grad_accum - 1
            context = (self.accelerator.no_sync(self.loss_model) if not sync and self.world > 1
                       else contextlib.nullcontext())
            with context:
                loss = self.loss_model(**batch) / config.grad_accum
                self.accelerator.backward(loss)
            total_loss += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.loss_ema = total_loss if self.loss_ema is None else 0.95 * self.loss_ema + 0.05 * total_loss
        return total_loss, len(mine) * self.world

    def extra_state(self) -> dict:
        return {"loss_ema": self.loss_ema}

    def restore_extra(self, training: dict) -> None:
        self.loss_ema = training.get("loss_ema")

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

    The budget (``config.budget_minutes``) is the wall time of this invocation,
    model loading included, as for every semid trainer; when it runs out, the
    model trained so far is saved in ``model/`` and the run stays resumable.

    Args:
        data: dataset directory, ``builtin:NAME`` or a loaded :class:`Dataset`.
        index: index directory or a fitted :class:`semid.ItemTokenizer`.
        checkpoint_steps: also checkpoint every this many optimizer steps.
        stop_after_steps: end this invocation after this many optimizer steps
            (stop reason ``budget``; resumable) - for tests and smoke runs.

    Raises:
        ParameterError: bad settings (empty task list, a base model that is not a
            causal LM, max_length beyond the model's context).
        ArtifactError: ``out`` exists without ``resume``/``overwrite``, or a resume
            with another index, dataset or other settings.
        CodeFormatError: a code token the tokenizer splits.
    """
    import torch
    from accelerate import Accelerator

    from semid.gen.llm.loss import loss_module

    budget = Budget(config.budget_minutes)
    settings = LoopSettings(max_epochs=config.epochs, eval_every=0, checkpoint_minutes=config.checkpoint_minutes,
                            checkpoint_steps=checkpoint_steps, budget_minutes=config.budget_minutes,
                            stop_after_steps=stop_after_steps)
    settings.validate()
    # Without a GPU, processes started by `accelerate launch`/`torchrun` only join
    # a (gloo) process group when accelerate is told to run on the CPU.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    dist = Distributed(accelerator.process_index, accelerator.num_processes, str(accelerator.device))
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    index, index_path = _load_index(index)
    _check_coverage(dataset, index)
    prompts = load_prompts(config.prompts)
    out = Path(out)
    run = open_or_create_run(
        out, dist, model_type=MODEL_TYPE, config=config.to_dict(), index_path=index_path,
        fingerprint=index.fingerprint, dataset=dataset, resume=resume, overwrite=overwrite,
        resumable_keys=RESUMABLE_KEYS,
    )
    with discard_on_failure(run, dist):
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
        loss_model, optimizer = accelerator.prepare(loss_module(model), optimizer)
        loss_model.train()
        trainable = LCRecTrainable(accelerator, model, loss_model, optimizer, params, encoded, config,
                                   tokenizer.pad_token_id)
        if dist.is_main and not run.has_checkpoint("last"):
            run.log("start", examples=len(encoded), steps=trainable.total_steps, processes=dist.world,
                    tasks={t: sum(e.task == t for e in encoded) for t in config.tasks})
    state = train_loop(trainable, run, settings, budget=budget, dist=dist, progress=progress)
    outcome = summarize(
        run, state, settings,
        finished=state.epoch >= config.epochs,
        total_steps=trainable.total_steps,
        epochs_completed=state.epoch + state.batch / trainable.steps_per_epoch,
        wall_seconds=round(budget.elapsed(), 1),
        examples=len(encoded),
        processes=dist.world,
        final_loss_ema=trainable.loss_ema,
    )
    if state.stopped == "budget":
        logger.warning("budget of this invocation used up after %d of %d steps; the model trained so far is saved "
                       "and the run continues with --resume", state.step, trainable.total_steps)
    if dist.is_main:
        _save_model(out, model, tokenizer, index, token_map, formatter, prompts, config, outcome)
    dist.barrier()
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
