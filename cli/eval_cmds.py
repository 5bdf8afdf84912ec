"""``semid evaluate`` and ``semid recommend`` for any trained run.

A run directory is dispatched on its model type: ``run.json`` (written by
:mod:`semid.gen.runs` for every trainer) names it in ``model_type``. :data:`RECOMMENDER_LOADERS` maps a model
type to ``"module:function"``; the function is called as
``fn(run_path, dataset=..., index=..., checkpoint=..., decoding=..., device=...)``
and returns a :class:`semid.evaluation.Recommender`. A model type that is not
listed is looked up as ``semid.gen.<model_type>:load_recommender``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import click

__all__ = ["RECOMMENDER_LOADERS", "commands", "load_recommender", "run_model_type"]

RECOMMENDER_LOADERS: dict[str, str] = {
    "tiger": "semid.cli.eval_cmds:_load_tiger",
    "sasrec": "semid.cli.eval_cmds:_load_cf",
    "lightgcn": "semid.cli.eval_cmds:_load_cf",
    "alpharec": "semid.cli.eval_cmds:_load_cf",
    "rlmrec": "semid.cli.eval_cmds:_load_cf",
    "lcrec": "semid.gen.lcrec:load_recommender",
    "rpg": "semid.cli.eval_cmds:_load_rpg",
}


#: ``semid evaluate popularity`` evaluates the most-popular baseline (no run directory).
POPULARITY = "popularity"
#: ``semid evaluate random``: a seeded random ranking (the floor).
RANDOM = "random"


def run_model_type(run_path: Path) -> str:
    """The model type of a run directory (see the module docstring)."""
    from semid.errors import ArtifactError

    if str(run_path) in (POPULARITY, RANDOM) and not run_path.exists():
        return str(run_path)

    if (run_path / "run.json").exists():
        from semid.gen.runs import open_run

        return open_run(run_path).model_type
    if not run_path.is_dir():
        raise ArtifactError(f"run directory not found: {run_path}")
    if (run_path / "config.json").exists() and "semid-cf-run" in (run_path / "config.json").read_text(errors="replace"):
        raise ArtifactError(
            f"{run_path} is a CF run in the format of semid 0.1 (config.json); this semid reads runs with a "
            "run.json: train it again with `semid cf train`"
        )
    raise ArtifactError(f"{run_path} is not a semid run: run.json is missing")


def load_recommender(run_path: Path, **options: Any):
    """Recommender of any registered run type."""
    from semid.errors import ParameterError

    model_type = run_model_type(run_path)
    if model_type == POPULARITY:
        from semid.evaluation import MostPopular

        return MostPopular(options["dataset"])
    if model_type == RANDOM:
        from semid.evaluation import RandomItems

        return RandomItems(options["dataset"], seed=int(options.get("seed") or 0))
    if options.get("dataset") is not None:
        from semid.gen.runs import open_run

        open_run(run_path).check_dataset(options["dataset"])
    target = RECOMMENDER_LOADERS.get(model_type, f"semid.gen.{model_type}:load_recommender")
    module_name, _, function = target.partition(":")
    try:
        loader = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError):
        raise ParameterError(
            f"{run_path}: no evaluator for model type {model_type!r} (expected {target}); "
            f"known types: {', '.join(sorted(RECOMMENDER_LOADERS))}"
        ) from None
    return loader(run_path, **options)


class _CFScorer:
    """A CF run as a D3 assistant: histories -> ``float (B, n_items)`` in index item order."""

    def __init__(self, run_path: Path, item_ids: list[str]):
        import torch

        from semid.errors import DataError
        from semid.gen.cf.data import histories_to_indexes
        from semid.gen.cf.run import load_run

        self._torch = torch
        self._to_indexes = histories_to_indexes
        self.model, _, cf_items, _ = load_run(run_path)
        self.max_len = int(getattr(self.model.config, "max_len", 50))
        self.item_index = {item: i + 1 for i, item in enumerate(cf_items)}
        missing = [item for item in item_ids if item not in self.item_index]
        if missing:
            raise DataError(f"assistant {run_path} does not know index item {missing[0]!r}")
        self.columns = torch.tensor([self.item_index[item] - 1 for item in item_ids], dtype=torch.long)

    def __call__(self, histories):
        seq = self._torch.from_numpy(self._to_indexes(histories, self.item_index, self.max_len))
        with self._torch.no_grad():
            return self.model.score(seq, None)[:, self.columns].float()


def _make_assistant(name: str | None, dataset, item_ids: list[str]):
    """The D3 assistant ``--assistant`` names: ``popularity``, a CF run directory, or ``None``."""
    if not name:
        return None
    if name == "popularity":
        from semid.evaluation import leave_one_out
        from semid.gen.decoding.assistant import PopularityScorer

        return PopularityScorer(item_ids, leave_one_out(dataset).train_sequences)
    return _CFScorer(Path(name), item_ids)


def _load_tiger(run_path: Path, *, dataset, index=None, checkpoint="best", decoding=None, device="cpu", **_):
    from semid.gen.tiger.recommender import load_tiger

    decoding = dict(decoding or {})
    assistant_name = decoding.pop("assistant", None)
    recommender = load_tiger(run_path, index_path=index, checkpoint=checkpoint, device=device, **decoding)
    recommender.assistant = _make_assistant(assistant_name, dataset, recommender.tokenizer.item_ids)
    return recommender


def _load_rpg(run_path: Path, *, dataset=None, index=None, checkpoint="best", decoding=None, device="cpu", **_):
    from semid.gen.parallel import load_recommender as load_parallel

    decoding = dict(decoding or {})
    recommender = load_parallel(run_path, dataset=dataset, index=index, checkpoint=checkpoint, decoding=decoding,
                                device=device)
    if decoding.get("decoding") == "d3":
        recommender.set_assistant(_make_assistant(decoding.get("assistant"), dataset, recommender.item_ids),
                                  float(decoding.get("alpha") or 0.0))
    return recommender


def _load_cf(run_path: Path, *, dataset, **_):
    from semid.gen.cf.recommender import CFRecommender
    from semid.gen.cf.run import load_run

    model, _, item_ids, user_ids = load_run(run_path)
    return CFRecommender(model, item_ids, user_ids, max_len=int(getattr(model.config, "max_len", 50)))


def _holdout_of(run_path: Path):
    """The run's :class:`~semid.gen.cf.SplitProtocol` when it is a CF run trained on a random hold-out."""
    from semid.gen.cf import MODELS, SplitProtocol, read_config

    if not (Path(run_path) / "run.json").exists() or run_model_type(Path(run_path)) not in MODELS:
        return None

    protocol = SplitProtocol.from_json(read_config(run_path)["protocol"])
    return protocol if protocol.is_holdout else None


def _parse_ks(text: str) -> list[int]:
    from semid.errors import ParameterError

    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ParameterError(f"--k must be comma-separated integers like 5,10,20, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise ParameterError(f"--k values must be >= 1, got {text!r}")
    return ks


@click.command("evaluate")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--data", "data_dir", required=True, help="Dataset directory or builtin:NAME.")
@click.option("--split", type=click.Choice(["test", "valid"]), default="test", show_default=True)
@click.option("--beams", type=int, default=20, show_default=True, help="Beams per user (generative runs).")
@click.option("--decoding", type=click.Choice(["beam", "d3", "graph"]), default="beam", show_default=True,
              help="beam: trie-constrained beam search (exact full ranking for rpg runs); d3: with an assistant; "
              "graph: RPG's graph-constrained decoding (rpg runs).")
@click.option("--assistant", default=None, help="D3 assistant: 'popularity' or a CF run directory.")
@click.option("--alpha", type=float, default=None, help="D3 assistant weight in [0, 1] (default 0.1 with an assistant).")
@click.option("--k", "k_text", default="1,5,10,20", show_default=True, help="Cut-offs, comma separated.")
@click.option("--users", type=int, default=None, help="Seeded random sample of N users (stated in the output).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the user sample.")
@click.option("--exclude-seen", is_flag=True, help="Never recommend items the user already interacted with.")
@click.option("--max-history", type=int, default=None,
              help="Most recent history items given to the model (default: the run's own, e.g. 50 for rpg runs; 20 "
                   "for baselines).")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None, help="Index directory (default: the one recorded in the run).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--device", default="cpu", show_default=True)
def evaluate_cmd(run, data_dir, split, beams, decoding, assistant, alpha, k_text, users, seed, exclude_seen,
                 max_history, index_dir, checkpoint, device) -> None:
    """Leave-one-out, full-ranking evaluation of a trained RUN; prints JSON.

    RUN may be the word `popularity` (the most frequent training items, the
    baseline every model must beat) or `random` (a seeded random ranking).
    """
    import semid
    from semid.errors import ParameterError
    from semid.evaluation import evaluate, evaluate_holdout
    from semid.gen.training import check_device

    ks = _parse_ks(k_text)
    if users is not None and users < 1:
        raise ParameterError(f"--users must be >= 1, got {users}")
    if max_history is not None and max_history < 1:
        raise ParameterError(f"--max-history must be >= 1 (items of history given to the model), got {max_history}")
    check_device(device)
    if assistant is not None and decoding != "d3":
        raise ParameterError("--assistant needs --decoding d3")
    if alpha is None:
        alpha = 0.1 if assistant is not None else 0.0
    dataset = semid.load_dataset(data_dir)
    if ks[-1] > len(dataset.items):
        given = click.get_current_context().get_parameter_source("k_text") != click.core.ParameterSource.DEFAULT
        where = f"--k {k_text}" if given else f"the default cut-offs {k_text}"
        raise ParameterError(
            f"{where} include {ks[-1]}, more than the catalogue's {len(dataset.items)} items; "
            f"pass --k with values up to {len(dataset.items)}"
        )
    options = {"num_beams": beams, "decoding": decoding, "alpha": alpha, "assistant": assistant}
    recommender = load_recommender(
        run, dataset=dataset, index=index_dir, checkpoint=checkpoint, decoding=options, device=device
    )
    if max_history is None:  # what the model was trained with, so no history shift at evaluation
        from semid.evaluation.split import DEFAULT_MAX_HISTORY

        max_history = int(getattr(recommender, "max_history", None) or DEFAULT_MAX_HISTORY)
    holdout = _holdout_of(run)
    if holdout is not None:
        # A model trained on a random hold-out has seen leave-one-out's targets: only its own split is fair.
        result = evaluate_holdout(recommender, holdout.holdout(dataset), split=split, ks=ks, n_users=users, seed=seed)
    else:
        result = evaluate(recommender, dataset, split=split, ks=ks, max_history=max_history,
                          exclude_seen=exclude_seen, n_users=users, seed=seed)
    result["run"] = str(run)
    result["model_type"] = run_model_type(run)
    result["settings"]["decoding"] = {**options, "checkpoint": checkpoint}
    click.echo(json.dumps(result, indent=2, sort_keys=True))


@click.command("recommend")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--history", "history", multiple=True, required=True,
              help="History item ids, oldest first (repeat the option or separate by commas).")
@click.option("--k", type=int, default=10, show_default=True)
@click.option("--user", default=None, help="User id (hashed into the user token of TIGER runs trained with user_buckets > 0).")
@click.option("--data", "data_dir", default=None, help="Dataset for titles (default: the one recorded in the run).")
@click.option("--beams", type=int, default=20, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def recommend_cmd(run, history, k, user, data_dir, beams, device) -> None:
    """Print the top-K items for a history: rank, item id, title."""
    import semid
    from semid.errors import DataError, ParameterError
    from semid.gen.training import check_device

    check_device(device)
    items = [part for entry in history for part in entry.replace(",", " ").split()]
    if not items:
        raise ParameterError("--history is empty; give at least one item id")
    if k < 1:
        raise ParameterError(f"--k must be >= 1, got {k}")
    dataset = None
    source = data_dir
    if source is None and (run / "run.json").exists():
        from semid.gen.runs import open_run

        source = open_run(run).data_path
    if source is not None:
        try:
            dataset = semid.load_dataset(source)
        except DataError:
            dataset = None  # titles are optional
    options = {"num_beams": beams, "decoding": "beam", "alpha": 0.0}
    recommender = load_recommender(run, dataset=dataset, decoding=options, device=device)
    # A run trained with user tokens gives an anonymous history a fixed one (ignored without).
    lists = recommender.recommend([items], k, users=[user or "<anonymous>"])
    for rank, item in enumerate(lists[0], start=1):
        title = ""
        if dataset is not None and item is not None and item in dataset.items:
            title = str(dataset.items[item].get("title") or "")
        click.echo(f"{rank}\t{item}\t{title}")


commands = [evaluate_cmd, recommend_cmd]
