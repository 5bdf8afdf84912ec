"""Training the parallel generator on the shared loop, and using a run as a recommender.

One batch row per user: the last ``max_history + 1`` training items, left padded;
the loss covers every position (:meth:`ParallelModel.loss`). AdamW with a linear
warm-up and cosine decay, gradients clipped at 1 (RPG). Validation: NDCG@10 by
exact full ranking on a seeded sample of validation users. Stopping, checkpoints,
budget and resume are the shared loop's. Under ``torchrun`` / ``accelerate launch``
each rank trains on its share of every epoch's batches and ``DistributedDataParallel``
averages the gradients; rank 0 validates and writes the run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semid.errors import DataError
from semid.evaluation import leave_one_out
from semid.evaluation.evaluate import evaluate_cases
from semid.evaluation.split import sample_cases

from ..collapse import distinct_items
from ..runs import discard_on_failure, open_or_create_run, open_run
from ..training import (Budget, Distributed, LoopSettings, Schedule, check_device, init_distributed, load_torch_state,
                        summarize, torch_state_writer, train_loop)
from ..training.torch_state import TRAINING_FILE
from .model import ParallelConfig, ParallelModel

__all__ = ["ParallelRecommender", "load_recommender", "train_parallel"]

MODEL_TYPE = "rpg"
#: Settings a resumed run may change: how long and how it runs, never what it learns from.
RESUMABLE = frozenset({"max_epochs", "patience", "eval_every", "checkpoint_minutes", "device", "precision", "compile"})


def _windows(sequences: Sequence[Sequence[int]], width: int) -> torch.Tensor:
    out = torch.zeros(len(sequences), width, dtype=torch.long)
    for r, seq in enumerate(sequences):
        recent = list(seq)[-width:]
        if recent:
            out[r, width - len(recent):] = torch.tensor(recent)
    return out


class ParallelRecommender:
    """A :class:`semid.evaluation.Recommender` over every item (always valid).

    ``decoding="exact"``: every item scored (one gather-and-sum). ``decoding="graph"``: RPG's
    graph-constrained decoding: a beam of ``beam`` items, started from the best of a seeded sample,
    is moved ``steps`` times to the best of its neighbours in the code graph
    (:func:`build_code_graph`, ``edges`` per item); only visited items are scored.
    """

    def __init__(self, model: ParallelModel, item_ids: Sequence[str], *, max_history: int, decoding: str = "exact",
                 edges: int = 200, beam: int = 20, steps: int = 3, seed: int = 0):
        from semid.errors import ParameterError

        if decoding not in ("exact", "graph"):
            raise ParameterError(f"decoding must be 'exact' or 'graph', got {decoding!r}")
        self.model, self.item_ids, self.max_history = model, list(item_ids), max_history
        self.row = {item: i + 1 for i, item in enumerate(self.item_ids)}
        self.decoding, self.beam, self.steps, self.seed = decoding, beam, steps, seed
        self.assistant, self.alpha = None, 0.0
        self.graph = None
        if decoding == "graph":
            from .model import build_code_graph

            codes = (model.item_tokens[1:] - model.level_offsets).numpy()
            self.graph = torch.from_numpy(build_code_graph(codes, edges))

    def set_assistant(self, assistant, alpha: float) -> None:
        """D3 blending with exact scoring: ``(1 - alpha) * score + alpha * log softmax(assistant scores)``.

        ``score`` is the model's mean per-code log-probability; the assistant is any item scorer
        (``histories -> float (B, n_items)`` in index order, e.g. popularity or a CF run). At a
        complete item D3's token-level assistant terms telescope to the assistant's log-probability
        of that item, so over a fully scored catalogue the blend is exactly this item-level sum.

        Raises:
            ParameterError: graph decoding (it scores only visited items), no assistant with
                ``alpha > 0``, or ``alpha`` outside ``[0, 1]``.
        """
        from semid.errors import ParameterError

        if not 0.0 <= alpha <= 1.0:
            raise ParameterError(f"alpha must be in [0, 1], got {alpha}")
        if self.decoding != "exact":
            raise ParameterError("D3 blending of the parallel generator needs exact scoring, not graph decoding")
        if assistant is None and alpha > 0:
            raise ParameterError("alpha > 0 needs an assistant (--assistant popularity or a CF run)")
        self.assistant, self.alpha = assistant, alpha

    def evaluation_settings(self) -> dict:
        if self.assistant is not None and self.alpha > 0:
            return {"ranking": f"exact, D3 blend with an assistant (alpha {self.alpha}): (1 - alpha) * mean "
                               "per-code log-probability + alpha * assistant log-probability",
                    "max_history": self.max_history}
        if self.decoding == "graph":
            return {"ranking": f"graph-constrained: beam {self.beam}, {self.steps} steps, "
                               f"{self.graph.shape[1]} edges per item", "max_history": self.max_history}
        return {"ranking": "exact: mean of per-code log-probabilities over every item", "max_history": self.max_history}

    def _graph_scores(self, windows: torch.Tensor, k: int) -> torch.Tensor:
        """Scores with ``-inf`` for items the graph walk never visited: ``float (B, n_items)``."""
        n = len(self.item_ids)
        logps = [lp.cpu() for lp in self.model.last_logps(windows)]
        batch = windows.shape[0]
        scores = torch.full((batch, n), float("-inf"))
        generator = torch.Generator().manual_seed(self.seed)
        width = max(self.beam, k)
        start = torch.stack([torch.randperm(n, generator=generator)[: min(n, 8 * width)] for _ in range(batch)])
        s = self.model.score_items(logps, start)
        scores.scatter_(1, start, s)
        beam = start.gather(1, s.topk(min(width, start.shape[1]), dim=1).indices)
        for _ in range(self.steps):
            neighbours = self.graph[beam].reshape(batch, -1)
            s = self.model.score_items(logps, neighbours)
            scores.scatter_(1, neighbours, s)
            beam = scores.topk(width, dim=1).indices
        return scores

    def recommend(self, histories, k, *, exclude=None, users=None):
        rows = [[self.row[i] for i in h if i in self.row] for h in histories]
        self.model.eval()
        windows = _windows(rows, self.max_history).to(self.model.item_tokens.device)
        scores = (self.model.score_all(windows) if self.decoding == "exact" else self._graph_scores(windows, k)).cpu()
        if self.assistant is not None and self.alpha > 0:
            helper = torch.log_softmax(self.assistant([list(h) for h in histories]).float(), dim=-1)
            scores = (1.0 - self.alpha) * scores + self.alpha * helper
        if exclude is not None:
            for b, items in enumerate(exclude):
                cols = [self.row[i] - 1 for i in items if i in self.row]
                if cols:
                    scores[b, cols] = float("-inf")
        values, top = torch.topk(scores, min(k, scores.shape[1]), dim=1)
        ids = np.asarray(self.item_ids, dtype=object)
        return [list(ids[t[torch.isfinite(v)].numpy()]) for t, v in zip(top, values)]


class _LossModule(torch.nn.Module):
    """The loss as one forward call, so ``DistributedDataParallel`` can wrap it."""

    def __init__(self, model: ParallelModel):
        super().__init__()
        self.model = model

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.model.loss(items)


class ParallelTrainable:
    """The parallel generator's part of the shared loop."""

    name = "rpg"

    def __init__(self, model: ParallelModel, optimizer, windows: torch.Tensor, cases, item_ids, config: ParallelConfig,
                 total_steps: int, dist: Distributed | None = None):
        self.model, self.optimizer, self.windows, self.cases = model, optimizer, windows, cases
        self.item_ids, self.config, self.total_steps = item_ids, config, total_steps
        steps_per_epoch = total_steps / config.max_epochs
        self.warmup_steps = (round(config.warmup_epochs * steps_per_epoch) if config.warmup_epochs > 0
                             else config.warmup_steps)
        self.schedule = Schedule("cosine", total_steps=max(total_steps, 1), warmup_steps=self.warmup_steps)
        self.dist = dist or Distributed()
        self.device = next(model.parameters()).device
        self.loss_module: torch.nn.Module = _LossModule(model)
        if self.dist.world > 1:
            self.loss_module = torch.nn.parallel.DistributedDataParallel(self.loss_module)
        self.step = 0

    def epoch_batches(self, epoch: int) -> list[torch.Tensor]:
        """This rank's batches of ``epoch`` (every rank draws the same order, then takes its share)."""
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.windows))
        size = self.config.batch_size
        batches = [torch.as_tensor(order[i : i + size]) for i in range(0, len(order), size)]
        world, rank = self.dist.world, self.dist.rank
        if world > 1:
            return batches[rank::world][: len(batches) // world]
        return batches

    def _lr(self) -> float:
        return self.config.lr * self.schedule(self.step)

    def train_step(self, batch: torch.Tensor) -> tuple[float, int]:
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        self.model.train()
        items = self.windows[batch].to(self.device)
        loss = self.loss_module(items)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.step += 1
        targets = int(((items[:, :-1] > 0) & (items[:, 1:] > 0)).sum()) * self.dist.world
        return float(loss.detach()), targets

    def validate(self) -> dict[str, Any]:
        recommender = ParallelRecommender(self.model, self.item_ids, max_history=self.config.max_history)
        metrics, ranked = evaluate_cases(recommender, self.cases, ks=(10,), batch_size=256, progress=False)
        return {**{k: round(v, 6) for k, v in metrics.items()}, "distinct@10": distinct_items(ranked),
                "users": len(self.cases)}

    def weight_writers(self):
        from safetensors.torch import save_file

        return {"model.safetensors": lambda path: save_file(
            {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}, str(path))}

    def training_writers(self):
        return {TRAINING_FILE: torch_state_writer(lambda: {"optimizer": self.optimizer.state_dict(),
                                                           "rng": {"torch": torch.get_rng_state()},
                                                           "step": self.step})}

    def restore(self, directory: Path) -> None:
        from safetensors.torch import load_file

        self.model.load_state_dict(load_file(str(directory / "model.safetensors"), device=str(self.device)))
        training = load_torch_state(directory / TRAINING_FILE)
        self.optimizer.load_state_dict(training["optimizer"])
        torch.set_rng_state(training["rng"]["torch"])
        self.step = int(training["step"])


def train_parallel(dataset, index, *, index_path: str, out, config: ParallelConfig,
                   budget_minutes: float | None = None, resume: bool = False, overwrite: bool = False,
                   progress: bool = True) -> dict[str, Any]:
    """Train the parallel generator on ``dataset`` with ``index`` (fixed-length codes) into run ``out``."""
    budget = Budget(budget_minutes)
    config.validate()
    check_device(config.device)
    missing = [i for i in dataset.items.item_ids if i not in set(index.item_ids)]
    if missing:
        raise DataError(f"the index does not hold {len(missing)} items of {dataset.name!r} (e.g. {missing[0]!r})")
    row = {item: i + 1 for i, item in enumerate(index.item_ids)}
    split = leave_one_out(dataset, max_history=config.max_history)
    sequences = [[row[i] for i in s] for s in split.train_sequences if len(s) >= 2]
    if not sequences:
        raise DataError(f"{dataset.name}: no user has 2 or more training items")
    windows = _windows(sequences, config.max_history + 1)
    cases = sample_cases(split.valid, config.eval_users, config.seed)
    dist = init_distributed(config.device)
    run = open_or_create_run(out, dist, model_type=MODEL_TYPE, config=config.to_dict(), dataset=dataset,
                             index_path=index_path, fingerprint=index.fingerprint, resume=resume, overwrite=overwrite,
                             resumable_keys=RESUMABLE)
    with discard_on_failure(run, dist):
        torch.manual_seed(config.seed)
        model = ParallelModel(config, index).to(dist.device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        steps = math.ceil(len(windows) / config.batch_size) // dist.world * config.max_epochs
        trainable = ParallelTrainable(model, optimizer, windows, cases, list(index.item_ids), config, steps, dist)
        if dist.is_main and not run.has_checkpoint("last"):
            run.log("start", users=len(windows), levels=len(model.level_sizes), validation_users=len(cases),
                    parameters=sum(p.numel() for p in model.parameters()), world_size=dist.world)
    settings = LoopSettings(max_epochs=config.max_epochs, patience=config.patience, eval_every=config.eval_every,
                            checkpoint_minutes=config.checkpoint_minutes, budget_minutes=budget_minutes)
    state = train_loop(trainable, run, settings, budget=budget, progress=progress)
    return summarize(run, state, settings, users=len(windows))


def load_recommender(run_path, *, dataset=None, index=None, checkpoint="best", decoding=None, device="cpu", **_):
    """Entry of ``semid evaluate`` / ``semid recommend`` for a parallel-generator run."""
    import semid
    from safetensors.torch import load_file

    run = open_run(run_path)
    index_path = index or run.index_path
    tokenizer = semid.load(index_path)
    run.check_fingerprint(tokenizer.fingerprint, index_path=index_path)
    config = ParallelConfig.from_dict(run.config)
    model = ParallelModel(config, tokenizer).to(device)
    directory, _ = run.load_checkpoint(checkpoint)
    model.load_state_dict(load_file(str(directory / "model.safetensors"), device=str(device)))
    model.eval()
    options = dict(decoding or {})
    mode = "graph" if options.get("decoding") == "graph" else "exact"  # d3: exact scoring plus an assistant
    beam = int(options.get("num_beams") or 20)
    return ParallelRecommender(model, tokenizer.item_ids, max_history=config.max_history, decoding=mode, beam=beam)
