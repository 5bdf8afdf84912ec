"""Train a CF model into a run directory: early stopping, per-epoch checkpoints, resume, budget.

One epoch = one pass over the training batches of the model. After every
``eval_every`` epochs the model is evaluated on the validation split
(leave-one-out, full ranking, :func:`semid.evaluation.evaluate`); the best
weights by validation NDCG@10 are kept. Training stops at ``max_epochs``, when
validation NDCG@10 has not improved for ``patience`` evaluations, or when the
time budget of this invocation is used up (checked after each epoch; a resumed
run gets a fresh budget). See :mod:`semid.gen.cf.run` for the directory layout.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from semid._io import atomic_directory, write_json
from semid.data.dataset import Dataset
from semid.errors import ArtifactError, ParameterError
from semid.evaluation import evaluate

from .data import prepare_cf_data
from .models import build_config, build_model
from .recommender import CFRecommender
from .run import (
    RUN_FORMAT,
    RUN_FORMAT_VERSION,
    check_dataset,
    checkpoint_progress,
    read_config,
    replace_file,
    save_graph,
    write_json_atomic,
    write_lines_atomic,
)

__all__ = ["TrainOptions", "train_cf"]

logger = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    """How long and how to validate; not part of the model (may change on resume).

    Attributes:
        max_epochs: stop after this many epochs in total.
        patience: stop after this many evaluations without a better validation NDCG@10.
        eval_every: evaluate every this many epochs (the last epoch is always evaluated).
        eval_users: validate on a seeded sample of this many users (None = all).
        budget_minutes: wall-time budget of this invocation (None = unlimited).
    """

    max_epochs: int = 200
    patience: int = 10
    eval_every: int = 1
    eval_users: int | None = None
    budget_minutes: float | None = None

    def check(self) -> None:
        for name in ("max_epochs", "patience", "eval_every"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_users is not None and self.eval_users < 1:
            raise ParameterError(f"eval_users must be >= 1, got {self.eval_users}")
        if self.budget_minutes is not None and self.budget_minutes <= 0:
            raise ParameterError(f"budget_minutes must be > 0, got {self.budget_minutes}")


def _versions() -> dict[str, str]:
    import semid

    return {"semid": semid.__version__, "torch": torch.__version__, "python": platform.python_version()}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    state = optimizer.state_dict()
    tensors = {
        f"optim.{index}.{key}": value.detach().clone() if torch.is_tensor(value) else torch.tensor(value)
        for index, entry in state["state"].items() for key, value in entry.items()
    }
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state["param_groups"]]
    return tensors, groups


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _save_checkpoint(run: Path, model, optimizer, generator: torch.Generator, best: dict[str, torch.Tensor],
                     progress: dict[str, Any]) -> None:
    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v.contiguous() for k, v in best.items()})
    optim_tensors, groups = _optimizer_tensors(optimizer)
    tensors.update(optim_tensors)
    tensors["rng.train"] = generator.get_state()
    tensors["rng.global"] = torch.get_rng_state()
    meta = {"progress": json.dumps(progress, sort_keys=True), "param_groups": json.dumps(groups)}
    replace_file(run / "checkpoint.safetensors", lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def _create_run(run: Path, name: str, config, seed: int, options: TrainOptions, dataset: Dataset, data) -> None:
    with atomic_directory(run) as staging:
        write_json(staging / "config.json", {
            "format": RUN_FORMAT,
            "format_version": RUN_FORMAT_VERSION,
            "model": name,
            "config": asdict(config),
            "seed": seed,
            "options": asdict(options),
            "dataset": {
                "name": dataset.name,
                "path": str(dataset.path) if dataset.path else None,
                "items_fingerprint": data.items_fingerprint,
                "train_fingerprint": data.train_fingerprint,
                "n_items": data.n_items,
                "n_users": data.n_users,
            },
            "split": "leave-one-out: train on s[:-2], validate on s[-2]",
            "versions": _versions(),
        })
        (staging / "item_ids.txt").write_text("".join(i + "\n" for i in data.item_ids), encoding="utf-8")
        if name == "lightgcn":
            (staging / "user_ids.txt").write_text("".join(u + "\n" for u in data.user_ids), encoding="utf-8")
            users, items = data.interactions()
            save_graph(staging, users, items - 1)


def train_cf(
    run: str | os.PathLike[str],
    dataset: Dataset,
    *,
    model_name: str | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    options: TrainOptions | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) a CF model in directory ``run``; returns the result summary.

    Args:
        model_name: ``"sasrec"`` or ``"lightgcn"`` (read from the run when resuming).
        overrides: model config values (``--set``); not allowed when resuming.
        options: stopping and validation options (on resume, these replace the
            stored ones, so ``max_epochs`` can be raised).

    Raises:
        ArtifactError: ``run`` exists without ``resume``, or is not a run.
        DataError: resuming on a different dataset.
        ParameterError: bad model settings or options.
    """
    run = Path(run)
    options = options or TrainOptions()
    options.check()
    data = prepare_cf_data(dataset)
    if resume and (run / "config.json").exists():
        config_json = read_config(run)
        if model_name not in (None, config_json["model"]):
            raise ParameterError(f"{run} holds a {config_json['model']!r} run, not {model_name!r}")
        if overrides:
            raise ParameterError("--set cannot change a run's model settings on --resume; start a new run")
        check_dataset(config_json, data, run, training=True)
        name, seed = config_json["model"], int(config_json["seed"])
        config = build_config(name, config_json["config"])
    else:
        if run.exists():
            raise ArtifactError(f"{run} already exists; pass --resume to continue it or choose another --out")
        if model_name is None:
            raise ParameterError("model_name is required for a new run")
        name = model_name
        config = build_config(name, overrides)
        _create_run(run, name, config, seed, options, dataset, data)

    torch.manual_seed(seed)
    model = build_model(name, data.n_items, data.n_users, config)
    if name == "lightgcn":
        model.attach_graph(data)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=getattr(config, "weight_decay", 0.0))
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {"epoch": 0, "best_epoch": 0, "best_ndcg10": -1.0, "bad_evals": 0, "history": [],
                             "stopped": None, "train_seconds": 0.0}
    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
    checkpoint = run / "checkpoint.safetensors"
    if checkpoint.exists():
        state = checkpoint_progress(checkpoint)
        tensors = load_file(checkpoint)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        with safe_open(str(checkpoint), framework="pt") as handle:
            groups = json.loads(handle.metadata()["param_groups"])
        _restore_optimizer(optimizer, {k: v for k, v in tensors.items() if k.startswith("optim.")}, groups)
        generator.set_state(tensors["rng.train"])
        torch.set_rng_state(tensors["rng.global"])
        logger.info("resuming %s at epoch %d (best %.4f at epoch %d)", run, state["epoch"], state["best_ndcg10"], state["best_epoch"])
        if state["stopped"] == "early_stopping":
            logger.info("%s already stopped early at epoch %d; nothing to do", run, state["epoch"])
            return _finish(run, model, best, state, options)

    recommender = CFRecommender(model, data.item_ids, data.user_ids, max_len=getattr(config, "max_len", 50))
    started = time.perf_counter()
    if state["epoch"] < options.max_epochs:
        state["stopped"] = None  # a resumed run continues; otherwise its stop reason stands
    while state["epoch"] < options.max_epochs:
        epoch = state["epoch"] + 1
        epoch_start = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        batches = model.training_batches(data, generator)
        for batch in tqdm(batches, desc=f"{name} epoch {epoch}", unit="batch", disable=not progress, leave=False):
            optimizer.zero_grad(set_to_none=True)
            loss = model.loss(batch, generator)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
        train_seconds = time.perf_counter() - epoch_start
        record: dict[str, Any] = {"epoch": epoch, "loss": total / max(count, 1), "train_seconds": round(train_seconds, 2)}
        out_of_budget = (
            options.budget_minutes is not None and time.perf_counter() - started >= 60 * options.budget_minutes
        )
        if epoch % options.eval_every == 0 or epoch == options.max_epochs or out_of_budget:
            result = evaluate(recommender, dataset, split="valid", ks=(10, 20), n_users=options.eval_users,
                              seed=seed, progress=False)
            record["valid"] = result["metrics"]
            record["eval_seconds"] = result["seconds"]
            ndcg = result["metrics"]["ndcg@10"]
            if ndcg > state["best_ndcg10"]:
                state.update(best_ndcg10=ndcg, best_epoch=epoch, bad_evals=0)
                best = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                state["bad_evals"] += 1
        state["epoch"] = epoch
        state["train_seconds"] = round(state["train_seconds"] + train_seconds, 2)
        state["history"].append(record)
        logger.info("%s epoch %d: %s", name, epoch, record)
        if state["bad_evals"] >= options.patience:
            state["stopped"] = "early_stopping"
        elif out_of_budget:
            state["stopped"] = "budget"
        elif epoch >= options.max_epochs:
            state["stopped"] = "max_epochs"
        _save_checkpoint(run, model, optimizer, generator, best, state)
        write_lines_atomic(run / "metrics.jsonl", [json.dumps(r, sort_keys=True) for r in state["history"]])
        if state["stopped"]:
            break
    return _finish(run, model, best, state, options)


def _finish(run: Path, model, best: dict[str, torch.Tensor], state: dict[str, Any], options: TrainOptions) -> dict[str, Any]:
    if state["epoch"] == 0:
        raise ArtifactError(f"{run}: no epoch finished (max_epochs={options.max_epochs})")
    weights = {k: v.contiguous() for k, v in best.items()}
    replace_file(run / "model.safetensors", lambda tmp: save_file(weights, str(tmp)))
    summary = {
        "epochs": state["epoch"],
        "best_epoch": state["best_epoch"],
        "best_valid_ndcg@10": state["best_ndcg10"],
        "best_valid": next((r.get("valid") for r in state["history"] if r["epoch"] == state["best_epoch"]), None),
        "stopped": state["stopped"] or "interrupted",
        "train_seconds": state["train_seconds"],
    }
    write_json_atomic(run / "result.json", summary)
    model.load_state_dict(best)
    return summary
