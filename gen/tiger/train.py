"""Training TIGER: early stopping on validation NDCG@10, checkpoints, resume, DDP.

:func:`train_tiger` runs in one process, or in several under ``torchrun`` /
``accelerate launch`` (``WORLD_SIZE > 1``: gloo process group, each rank
trains on its share of the batches, gradients averaged by
``DistributedDataParallel``; rank 0 validates, logs and writes checkpoints).

Stopping: after ``patience`` validations without a better NDCG@10, after
``max_epochs``, or when the time budget of this invocation is spent. The
``last`` checkpoint is written every ``checkpoint_minutes`` (mid-epoch, with
the position in the epoch's seeded batch order) and on every stop, so
``resume=True`` continues a killed run where its last checkpoint left it;
``best`` holds the weights with the best validation score.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from semid.data.dataset import Dataset
from semid.errors import DataError
from semid.evaluation import leave_one_out
from semid.evaluation.evaluate import evaluate_cases

from ..runs import RunDirectory, create_run
from .batches import collate, count_targets, length_bucketed_batches, make_windows
from .checkpoint import load_model, load_training_state, save_model_checkpoint
from .config import TigerConfig
from .diagnostics import position_nll
from .health import collapse_floor, distinct_items, sample_cases
from .layout import TokenLayout
from .model import build_model, sequence_loss

__all__ = ["RESUMABLE_SETTINGS", "train_tiger", "validation_cases"]

logger = logging.getLogger(__name__)

#: Settings that may differ when a run is resumed.
RESUMABLE_SETTINGS = frozenset({"max_epochs", "patience", "device", "checkpoint_minutes", "eval_every"})


class _LossModule(torch.nn.Module):
    """Wraps the loss so DistributedDataParallel sees one forward call per step."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return sequence_loss(self.model, batch)


def _distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)`` under torchrun / accelerate launch.

    CPU processes join over gloo. On CUDA each process takes the GPU of its
    ``LOCAL_RANK`` and joins over NCCL (the flags the ranks exchange then live
    on that GPU too).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world, device


def validation_cases(dataset: Dataset, config: TigerConfig):
    """Validation cases: all users, or the seeded sample of ``eval_users`` (stated in the log)."""
    cases = leave_one_out(dataset, max_history=config.max_history).valid
    return sample_cases(cases, config.eval_users, config.seed)


def _validate(model, tokenizer, layout, cases, config: TigerConfig) -> dict[str, float]:
    from .recommender import TigerRecommender

    device = str(next(model.parameters()).device)  # this rank's device under DDP
    recommender = TigerRecommender(model, tokenizer, layout, num_beams=config.eval_beams, device=device)
    was_training = model.training
    model.eval()
    metrics, ranked = evaluate_cases(recommender, cases, ks=(10,), batch_size=128, progress=False)
    model.train(was_training)
    metrics = {key: round(value, 6) for key, value in metrics.items()}
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


def lr_factor(config: TigerConfig):
    """Multiplier of ``config.lr`` at optimizer step ``step`` (0-based): linear warm-up, then the schedule."""
    warmup = max(config.warmup_steps, 1)
    decay_after = max(config.decay_after, 1)

    def factor(step: int) -> float:
        value = min(1.0, (step + 1) / warmup)
        if config.schedule == "inverse_sqrt" and step + 1 > decay_after:
            value *= math.sqrt(decay_after / (step + 1))
        return value

    return factor


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state()}


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
        budget_minutes: wall-time budget of this invocation (None = unlimited).

    Raises:
        ArtifactError: ``out`` exists without resume/overwrite, or resume with a
            different index or settings; DataError: no training targets.
    """
    config.validate()
    rank, world, device = _distributed(torch.device(config.device))
    started = time.monotonic()
    torch.manual_seed(config.seed)
    layout = TokenLayout(tokenizer, config.user_buckets)
    split = leave_one_out(dataset, max_history=config.max_history)
    windows = make_windows(
        split.train_sequences, split.train_users, layout, max_history=config.max_history, recipe=config.recipe,
        encoder_attention=config.encoder_attention,
    )
    n_targets = count_targets(windows)
    if n_targets == 0:
        raise DataError(f"{dataset.name}: no user has 2 or more training items; nothing to train TIGER on")
    if rank == 0:
        run = create_run(
            out, model_type="tiger", config=config.to_dict(), index_path=str(index_path),
            fingerprint=tokenizer.fingerprint, data=str(dataset.path or dataset.name), resume=resume,
            overwrite=overwrite, resumable_keys=RESUMABLE_SETTINGS, defaults=TigerConfig().to_dict(),
        )
    if world > 1:
        torch.distributed.barrier()
    if rank != 0:
        from ..runs import open_run

        run = open_run(out)
    cases = validation_cases(dataset, config)

    model = build_model(config, layout).to(device)
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config))
    state: dict[str, Any] = {
        "epoch": 0, "batch": 0, "step": 0, "best_ndcg@10": -1.0, "best_epoch": None,
        "bad_evaluations": 0, "train_seconds": 0.0, "targets_seen": 0, "stopped": None,
    }
    if resume and run.has_checkpoint("last"):
        loaded, state = load_model(run, "last", device=str(device))
        model.load_state_dict(loaded.state_dict())
        training = load_training_state(run)
        optimizer.load_state_dict(training["optimizer"])
        scheduler.load_state_dict(training["scheduler"])
        torch.set_rng_state(training["rng"]["torch"])
        if rank == 0:
            run.log("resume", epoch=state["epoch"], batch=state["batch"], step=state["step"])
        logger.info("resumed %s at epoch %d batch %d", out, state["epoch"], state["batch"])
        finished = (state.get("stopped") == "patience" and state["bad_evaluations"] >= config.patience) or (
            state.get("stopped") == "max_epochs" and state["epoch"] >= config.max_epochs
        )
        if finished:  # nothing left to do unless max_epochs / patience were raised
            return _summary(run, state, n_targets, len(windows))
        state["stopped"] = None
    elif rank == 0:
        run.log("start", n_windows=len(windows), n_targets=n_targets, validation_users=len(cases),
                recipe=config.recipe, world_size=world)
    model.train()
    trainer: torch.nn.Module = _LossModule(model)
    if world > 1:
        trainer = torch.nn.parallel.DistributedDataParallel(trainer)

    def checkpoint(name: str = "last") -> None:
        if rank == 0:
            training = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": _rng_state()}
            save_model_checkpoint(run, name, model, state, training=training if name == "last" else None)

    last_checkpoint = time.monotonic()
    deadline = started + budget_minutes * 60 if budget_minutes is not None else math.inf
    while state["stopped"] is None:
        if state["epoch"] >= config.max_epochs:
            state["stopped"] = "max_epochs"
            break
        epoch = state["epoch"]
        batches = length_bucketed_batches(windows, config.batch_size, np.random.default_rng([config.seed, epoch]))
        per_rank = len(batches) // world if world > 1 else len(batches)
        mine = batches[rank::world][:per_rank]
        epoch_loss, epoch_targets, epoch_started = 0.0, 0, time.monotonic()
        epoch_wall_start = epoch_started  # epoch_started moves at mid-epoch checkpoints
        bar = tqdm(range(state["batch"], per_rank), desc=f"tiger epoch {epoch + 1}", unit="batch",
                   disable=not progress or rank != 0, leave=False)
        for b in bar:
            batch = {k: v.to(device) for k, v in collate([windows[i] for i in mine[b]], layout).items()}
            loss = trainer(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            targets = sum(len(windows[i].targets) for i in mine[b]) * world
            state["step"] += 1
            state["batch"] = b + 1
            state["targets_seen"] += targets
            epoch_loss += float(loss.detach()) * targets
            epoch_targets += targets
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            now = time.monotonic()
            if _agree(now >= deadline, world, device):
                state["stopped"] = "budget"
                break
            if _agree(now - last_checkpoint >= config.checkpoint_minutes * 60, world, device):
                state["train_seconds"] += now - epoch_started
                epoch_started = now
                checkpoint()
                last_checkpoint = now
        state["train_seconds"] += time.monotonic() - epoch_started
        if state["stopped"] is None:
            state["epoch"] += 1
            state["batch"] = 0
            if rank == 0:
                run.log("epoch", epoch=state["epoch"], step=state["step"],
                        loss=round(epoch_loss / max(epoch_targets, 1), 5), targets=epoch_targets,
                        targets_per_second=round(epoch_targets / max(time.monotonic() - epoch_wall_start, 1e-9), 1))
        evaluate_now = state["stopped"] is not None or state["epoch"] % config.eval_every == 0
        if evaluate_now and state["step"] > 0:
            _evaluate_and_stop(rank, world, run, model, tokenizer, layout, cases, config, state, checkpoint)
        checkpoint()
        last_checkpoint = time.monotonic()
    if rank == 0:
        run.log("stop", reason=state["stopped"], epoch=state["epoch"], step=state["step"],
                best_epoch=state["best_epoch"], best_ndcg_at_10=state["best_ndcg@10"],
                train_seconds=round(state["train_seconds"], 1), targets_seen=state["targets_seen"])
        checkpoint()
    if world > 1:
        torch.distributed.barrier()
    return _summary(run, state, n_targets, len(windows))


def _evaluate_and_stop(rank, world, run, model, tokenizer, layout, cases, config, state, checkpoint) -> None:
    """Validate on rank 0, keep the best weights, decide early stopping on every rank."""
    stop_for_patience = torch.zeros(1, device=next(model.parameters()).device)
    if rank == 0:
        metrics = _validate(model, tokenizer, layout, cases, config)
        score = metrics["ndcg@10"]
        run.log("valid", epoch=state["epoch"], step=state["step"], users=len(cases), **metrics)
        if score > state["best_ndcg@10"]:
            state["best_ndcg@10"], state["best_epoch"], state["bad_evaluations"] = score, state["epoch"], 0
            checkpoint("best")
        else:
            state["bad_evaluations"] += 1
        stop_for_patience[0] = float(state["bad_evaluations"] >= config.patience)
    if world > 1:
        torch.distributed.broadcast(stop_for_patience, src=0)
    if stop_for_patience.item() and state["stopped"] is None:
        state["stopped"] = "patience"


def _agree(flag: bool, world: int, device: torch.device | None = None) -> bool:
    """True on every rank when any rank says so (ranks must stop on the same batch)."""
    if world <= 1:
        return flag
    value = torch.tensor([float(flag)], device=device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())


def _summary(run: RunDirectory, state: dict[str, Any], n_targets: int, n_windows: int) -> dict[str, Any]:
    return {
        "run": str(run.path),
        "stopped": state["stopped"],
        "epochs": state["epoch"],
        "epochs_trained": round(state["targets_seen"] / max(n_targets, 1), 3),
        "steps": state["step"],
        "best_epoch": state["best_epoch"],
        "best_valid_ndcg@10": state["best_ndcg@10"],
        "train_seconds": round(state["train_seconds"], 1),
        "training_targets_per_epoch": n_targets,
        "windows_per_epoch": n_windows,
    }
