"""Training TIGER on the shared loop (:mod:`semid.gen.training`): its batches, loss and validation.

:func:`train_tiger` runs in one process, or in several under ``torchrun`` /
``accelerate launch`` (``WORLD_SIZE > 1``: each rank trains on its share of the
batches, gradients averaged by ``DistributedDataParallel``; rank 0 validates,
logs and writes checkpoints). Stopping, checkpoints, resume and the budget are
the loop's and mean the same for every semid model: see
:mod:`semid.gen.training.loop`. Validation is NDCG@10 on a seeded sample of
``eval_users`` validation users, with the distinct-items collapse check.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from semid.data.dataset import Dataset
from semid.errors import DataError
from semid.evaluation import leave_one_out
from semid.evaluation.evaluate import evaluate_cases
from semid.evaluation.split import sample_cases

from ..runs import discard_on_failure, open_or_create_run
from ..training import (
    Budget,
    Distributed,
    LoopSettings,
    check_device,
    init_distributed,
    load_torch_state,
    summarize,
    torch_state_writer,
    train_loop,
)
from ..training.precision import autocast, keep_float32
from ..training.schedules import Schedule
from ..training.torch_state import TRAINING_FILE
from .batches import collate, count_targets, length_bucketed_batches, make_windows
from .checkpoint import model_writers
from .config import TigerConfig
from .diagnostics import position_nll
from ..collapse import collapse_floor, distinct_items
from .layout import TokenLayout
from .model import build_model, sequence_loss

__all__ = ["RESUMABLE_SETTINGS", "TigerTrainable", "epoch_batches", "loop_settings", "lr_factor", "train_tiger",
           "validation_cases"]

logger = logging.getLogger(__name__)

#: Settings that may differ when a run is resumed.
RESUMABLE_SETTINGS = frozenset({"max_epochs", "patience", "device", "checkpoint_minutes", "eval_every", "precision"})


class _LossModule(torch.nn.Module):
    """Wraps the loss so DistributedDataParallel sees one forward call per step."""

    def __init__(self, model: torch.nn.Module, precision: str = "fp32"):
        super().__init__()
        self.model, self.precision = model, precision
        if precision != "fp32":
            keep_float32(model.lm_head)  # logits stay float32: bf16 would round them to steps of 0.06-0.25

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        with autocast(self.precision, device):
            return sequence_loss(self.model, batch).float()


def validation_cases(dataset: Dataset, config: TigerConfig):
    """Validation cases: all users, or the seeded sample of ``eval_users`` (stated in the log)."""
    cases = leave_one_out(dataset, max_history=config.max_history).valid
    return sample_cases(cases, config.eval_users, config.seed)


def _validate(model, tokenizer, layout, cases, config: TigerConfig, *, progress: bool = False) -> dict[str, Any]:
    from .recommender import TigerRecommender

    device = str(next(model.parameters()).device)  # this rank's device under DDP
    recommender = TigerRecommender(model, tokenizer, layout, num_beams=config.eval_beams, device=device)
    was_training = model.training
    model.eval()
    metrics, ranked = evaluate_cases(recommender, cases, ks=(10,), batch_size=128, progress=progress)
    model.train(was_training)
    metrics = {key: round(value, 6) for key, value in metrics.items()}
    metrics["users"] = len(cases)
    metrics["distinct@10"] = distinct_items(ranked)
    metrics["position_nll"] = position_nll(model, layout, cases, max_history=config.max_history)
    floor = collapse_floor(len(cases), len(tokenizer.item_ids))
    if metrics["distinct@10"] < floor:
        logger.warning(
            "TIGER looks collapsed: the top-10 lists of %d validation users hold only %d distinct items "
            "(floor %d): the decoder is ignoring the history; run `semid diagnose tiger` on this run",
            len(cases), metrics["distinct@10"], floor,
        )
    return metrics


def make_optimizer(model: torch.nn.Module, config: TigerConfig) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` names, over every parameter."""
    if config.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                         scale_parameter=True, relative_step=False, warmup_init=False)
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(config: TigerConfig, total_steps: int = 0) -> Schedule:
    """Multiplier of ``config.lr`` at optimizer step ``step`` (0-based): linear warm-up, then ``config.schedule``.

    ``total_steps`` (the optimizer steps of ``max_epochs`` epochs) is the horizon that
    ``linear``, ``cosine`` and ``wsd`` decay to.
    """
    return Schedule(config.schedule, total_steps=total_steps, warmup_steps=config.warmup_steps,
                    decay_after=config.decay_after, cooldown=config.cooldown)


def epoch_batches(windows, config: TigerConfig, dist: Distributed, epoch: int) -> list[list[int]]:
    """This rank's batches (window indices) of ``epoch``: seeded, the same on every rank's draw."""
    batches = length_bucketed_batches(windows, config.batch_size, np.random.default_rng([config.seed, epoch]))
    world, rank = dist.world, dist.rank
    per_rank = len(batches) // world if world > 1 else len(batches)
    return batches[rank::world][:per_rank]


class TigerTrainable:
    """TIGER's part of the shared loop (:mod:`semid.gen.training`): batches, loss, validation, state."""

    name = "tiger"

    def __init__(self, model, optimizer, scheduler, windows, layout, tokenizer, cases, config: TigerConfig,
                 dist: Distributed, progress: bool):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.windows, self.layout, self.tokenizer, self.cases, self.config = windows, layout, tokenizer, cases, config
        self.dist, self.progress = dist, progress
        self.device = next(model.parameters()).device
        self.loss_module: torch.nn.Module = _LossModule(model, config.precision)
        if dist.world > 1:
            self.loss_module = torch.nn.parallel.DistributedDataParallel(self.loss_module)
        model.train()

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        return epoch_batches(self.windows, self.config, self.dist, epoch)

    def train_step(self, batch: list[int]) -> tuple[float, int]:
        tensors = {k: v.to(self.device) for k, v in collate([self.windows[i] for i in batch], self.layout).items()}
        loss = self.loss_module(tensors)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach()), sum(len(self.windows[i].targets) for i in batch) * self.dist.world

    def validate(self) -> dict[str, Any]:
        return _validate(self.model, self.tokenizer, self.layout, self.cases, self.config, progress=self.progress)

    def weight_writers(self):
        return model_writers(self.model)

    def training_writers(self):
        return {TRAINING_FILE: torch_state_writer(lambda: {
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
        })}

    def restore(self, directory) -> None:
        from safetensors.torch import load_model as load_weights

        load_weights(self.model, str(directory / "model.safetensors"), device=str(self.device))
        training = load_torch_state(directory / TRAINING_FILE)
        self.optimizer.load_state_dict(training["optimizer"])
        self.scheduler.load_state_dict(training["scheduler"])
        torch.set_rng_state(training["rng"]["torch"])


def loop_settings(config: TigerConfig, budget_minutes: float | None) -> LoopSettings:
    """The shared loop's settings from a TIGER config."""
    return LoopSettings(max_epochs=config.max_epochs, patience=config.patience, eval_every=config.eval_every,
                        checkpoint_minutes=config.checkpoint_minutes, budget_minutes=budget_minutes)


def train_tiger(
    dataset: Dataset,
    tokenizer,
    *,
    index_path: str,
    out: str,
    config: TigerConfig,
    budget_minutes: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) a TIGER run in ``out``; returns a summary dict.

    Args:
        dataset: the full dataset; training uses the leave-one-out training part.
        tokenizer: the fitted index (its fingerprint is recorded in the run).
        index_path: where the index lives (recorded, used by ``semid evaluate``).
        budget_minutes: wall-clock budget of this invocation, validation included
            (None = unlimited; see :class:`semid.gen.training.Budget`).

    Raises:
        ArtifactError: ``out`` exists without resume/overwrite, or resume with a
            different index, dataset or settings; DataError: no training targets.
    """
    budget = Budget(budget_minutes)
    config.validate()
    check_device(config.device)
    settings = loop_settings(config, budget_minutes)
    settings.validate()
    dist = init_distributed(config.device)
    device = torch.device(dist.device)
    torch.manual_seed(config.seed)
    layout = TokenLayout(tokenizer, config.user_buckets)
    split = leave_one_out(dataset, max_history=config.max_history)
    windows = make_windows(
        split.train_sequences, split.train_users, layout, max_history=config.max_history, recipe=config.recipe,
        encoder_attention=config.attention,
    )
    n_targets = count_targets(windows)
    if n_targets == 0:
        raise DataError(f"{dataset.name}: no user has 2 or more training items; nothing to train TIGER on")
    run = open_or_create_run(
        out, dist, model_type="tiger", config=config.to_dict(), dataset=dataset, index_path=str(index_path),
        fingerprint=tokenizer.fingerprint, resume=resume, overwrite=overwrite,
        resumable_keys=RESUMABLE_SETTINGS, defaults=TigerConfig().to_dict(),
    )
    with discard_on_failure(run, dist):
        cases = validation_cases(dataset, config)
        model = build_model(config, layout).to(device)
        optimizer = make_optimizer(model, config)
        # The decaying shapes end at the last step of max_epochs (a resume with a new max_epochs
        # moves that end: the rate follows the horizon in effect).
        total_steps = config.max_epochs * len(epoch_batches(windows, config, dist, 0))
        schedule = lr_factor(config, total_steps)
        # A plain function, not the Schedule object: LambdaLR would save an object's fields in its
        # state and restore the old horizon over the current one on resume.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule(step))
        trainable = TigerTrainable(model, optimizer, scheduler, windows, layout, tokenizer, cases, config, dist,
                                   progress)
        if dist.is_main and not run.has_checkpoint("last"):
            run.log("start", n_windows=len(windows), n_targets=n_targets, validation_users=len(cases),
                    recipe=config.recipe, world_size=dist.world)
    state = train_loop(trainable, run, settings, budget=budget, dist=dist, progress=progress)
    return summarize(run, state, settings, training_targets_per_epoch=n_targets, windows_per_epoch=len(windows))
