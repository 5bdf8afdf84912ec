"""Train a CF model (SASRec, LightGCN) on the shared loop (:mod:`semid.gen.training`).

One epoch = one pass over the training batches of the model. Every
``eval_every`` epochs the model is evaluated on the validation split
(leave-one-out, full ranking, :func:`semid.evaluation.evaluate`); ``best`` keeps
the weights with the best validation NDCG@10. Stopping, checkpoints, resume and
the budget (wall time of this invocation, validation included) mean what they
mean for every semid model. See :mod:`semid.gen.cf.run` for the directory layout.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from semid.data.dataset import Dataset
from semid.errors import ParameterError
from semid.evaluation import Holdout, evaluate, evaluate_holdout

from ..runs import discard_on_failure, open_or_create_run
from ..training import Budget, Distributed, LoopSettings, load_torch_state, summarize, torch_state_writer, train_loop
from ..training.torch_state import TRAINING_FILE
from .data import prepare_cf_data
from .models import GRAPH_MODELS, build_config, build_model
from .protocol import SplitProtocol
from .recommender import CFRecommender
from .run import read_config, replace_file

__all__ = ["CFTrainable", "TrainOptions", "train_cf"]

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
        exclude_seen: under leave-one-out, validate with the user's earlier items
            removed from the candidates; None = for the graph models only (see
            :mod:`semid.gen.cf.protocol`). The hold-out protocol always masks them.
    """

    max_epochs: int = 200
    patience: int = 10
    eval_every: int = 1
    eval_users: int | None = None
    budget_minutes: float | None = None
    exclude_seen: bool | None = None

    def check(self) -> None:
        for name in ("max_epochs", "patience", "eval_every"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_users is not None and self.eval_users < 1:
            raise ParameterError(f"eval_users must be >= 1, got {self.eval_users}")
        if self.budget_minutes is not None and self.budget_minutes <= 0:
            raise ParameterError(f"budget_minutes must be > 0, got {self.budget_minutes}")


def validates_without_seen(name: str, options: TrainOptions) -> bool:
    """Whether leave-one-out validation masks the user's earlier items (default: graph models only)."""
    return name in GRAPH_MODELS if options.exclude_seen is None else options.exclude_seen


class CFTrainable:
    """A CF model's part of the shared loop (:mod:`semid.gen.training`)."""

    def __init__(self, name: str, model, optimizer, data, dataset: Dataset, seed: int, options: TrainOptions,
                 recommender: CFRecommender, holdout: Holdout | None = None):
        self.name, self.model, self.optimizer, self.data, self.dataset = name, model, optimizer, data, dataset
        self.seed, self.options, self.recommender, self.holdout = seed, options, recommender, holdout
        self.exclude_seen = True if holdout is not None else validates_without_seen(name, options)
        # Negative samples and dropout draw from this generator; it is saved in ``last``.
        self.generator = torch.Generator().manual_seed(seed)

    def epoch_batches(self, epoch: int) -> list[torch.Tensor]:
        # The order of an epoch depends on (seed, epoch) only, so a run resumed mid-epoch sees the same batches.
        order = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        self.model.train()
        return list(self.model.training_batches(self.data, order))

    def train_step(self, batch: torch.Tensor) -> tuple[float, int]:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.model.loss(batch, self.generator)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach()), len(batch)

    def validate(self) -> dict[str, Any]:
        self.model.eval()
        if self.holdout is not None:
            result = evaluate_holdout(self.recommender, self.holdout, split="valid", ks=(10, 20),
                                      n_users=self.options.eval_users, seed=self.seed, progress=False)
            return {**result["metrics"], "users": result["n_users"]}
        result = evaluate(self.recommender, self.dataset, split="valid", ks=(10, 20), n_users=self.options.eval_users,
                          seed=self.seed, progress=False, exclude_seen=self.exclude_seen)
        return {**result["metrics"], "users": result["n_users"]}

    def weight_writers(self):
        def write(path):
            save_file({k: v.detach().contiguous() for k, v in self.model.state_dict().items()}, str(path))

        return {"model.safetensors": write}

    def training_writers(self):
        return {TRAINING_FILE: torch_state_writer(lambda: {
            "optimizer": self.optimizer.state_dict(),
            "rng": {"train": self.generator.get_state(), "torch": torch.get_rng_state()},
        })}

    def restore(self, directory: Path) -> None:
        self.model.load_state_dict(load_file(directory / "model.safetensors"))
        training = load_torch_state(directory / TRAINING_FILE)
        self.optimizer.load_state_dict(training["optimizer"])
        self.generator.set_state(training["rng"]["train"])
        torch.set_rng_state(training["rng"]["torch"])


def _write_run_files(run: Path, name: str, data) -> None:
    replace_file(run / "item_ids.txt", lambda tmp: tmp.write_text("".join(i + "\n" for i in data.item_ids),
                                                                 encoding="utf-8"))
    if name in GRAPH_MODELS:
        replace_file(run / "user_ids.txt", lambda tmp: tmp.write_text("".join(u + "\n" for u in data.user_ids),
                                                                     encoding="utf-8"))
        users, items = data.interactions()
        save_graph(run, users, items - 1)


def save_graph(run: Path, users: np.ndarray, items: np.ndarray) -> None:
    tensors = {"users": torch.from_numpy(users.astype(np.int64)), "items": torch.from_numpy(items.astype(np.int64))}
    replace_file(run / "graph.safetensors", lambda tmp: save_file(tensors, str(tmp)))


def train_cf(
    run: str | os.PathLike[str],
    dataset: Dataset,
    *,
    model_name: str | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    options: TrainOptions | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    protocol: SplitProtocol | None = None,
) -> dict[str, Any]:
    """Train (or resume) a CF model in directory ``run``; returns the result summary.

    Args:
        model_name: ``"sasrec"``, ``"lightgcn"`` or ``"alpharec"`` (read from the run when resuming).
        overrides: model config values (``--set``); not allowed when resuming.
        options: stopping and validation options (on resume, these replace the
            stored ones, so ``max_epochs`` can be raised).
        protocol: the split to learn from and validate on (default leave-one-out;
            read from the run when resuming, where another one is refused).

    Raises:
        ArtifactError: ``run`` exists without ``resume``/``overwrite``, or is not a run.
        DataError: resuming on a different dataset.
        ParameterError: bad model settings or options.
    """
    budget = Budget(options.budget_minutes if options else None)
    run = Path(run)
    options = options or TrainOptions()
    options.check()
    if resume and run.exists():
        stored = read_config(run)
        if model_name not in (None, stored["model"]):
            raise ParameterError(f"{run} holds a {stored['model']!r} run, not {model_name!r}")
        if overrides:
            raise ParameterError("--set cannot change a run's model settings on --resume; start a new run")
        stored_protocol = SplitProtocol.from_json(stored["protocol"])
        if protocol is not None and protocol != stored_protocol:
            raise ParameterError(f"{run} was trained under {stored_protocol.to_json()}, not {protocol.to_json()}; "
                                 "start a new run for another protocol")
        name, seed, protocol = stored["model"], stored["seed"], stored_protocol
        config = build_config(name, stored["config"])
    else:
        if model_name is None:
            raise ParameterError("model_name is required for a new run")
        name = model_name
        config = build_config(name, overrides)
        protocol = protocol or SplitProtocol()
    holdout = protocol.holdout(dataset)
    data = prepare_cf_data(dataset, holdout)
    dist = Distributed()
    opened = open_or_create_run(
        run, dist, model_type=name, config={"model": asdict(config), "seed": seed, "options": asdict(options),
                                            "protocol": protocol.to_json()},
        dataset=dataset, resume=resume, overwrite=overwrite, resumable_keys=frozenset({"options"}),
    )
    with discard_on_failure(opened, dist):
        if not (run / "item_ids.txt").exists():
            _write_run_files(run, name, data)
            opened.log("start", model=name, n_items=data.n_items, n_users=data.n_users, seed=seed,
                       protocol=protocol.to_json(),
                       valid_exclude_seen=True if holdout else validates_without_seen(name, options))
        torch.manual_seed(seed)
        model = build_model(name, data.n_items, data.n_users, config)
        if name in GRAPH_MODELS:
            model.attach_graph(data)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=getattr(config, "weight_decay", 0.0))
        recommender = CFRecommender(model, data.item_ids, data.user_ids, max_len=getattr(config, "max_len", 50))
        trainable = CFTrainable(name, model, optimizer, data, dataset, seed, options, recommender, holdout)
    settings = LoopSettings(max_epochs=options.max_epochs, patience=options.patience, eval_every=options.eval_every,
                            budget_minutes=options.budget_minutes)
    state = train_loop(trainable, opened, settings, budget=budget, progress=progress)
    model.load_state_dict(load_file(opened.checkpoint_path("best") / "model.safetensors"))
    model.eval()
    best = next((r for r in opened.read_log() if r.get("event") == "valid" and r.get("epoch") == state.best_epoch), None)
    return summarize(opened, state, settings,
                     best_valid={k: v for k, v in best.items() if k not in {"event", "time"}} if best else None)
