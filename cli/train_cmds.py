"""Training commands: the ``semid train`` group and ``semid train tiger``.

Other generators add their own sub-command to :data:`train` from their module
(``train.add_command(...)``), so ``semid train --help`` lists every model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

__all__ = ["commands", "train"]


@click.group("train")
def train() -> None:
    """Train a generative recommender on a dataset and an index."""


@train.command("tiger")
@click.option("--data", "data_dir", required=True, help="Dataset directory or builtin:NAME.")
@click.option("--index", "index_dir", required=True, type=click.Path(path_type=Path), help="Index directory (semid build-index).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Run directory to write.")
@click.option("--budget-minutes", type=float, default=None, help="Wall-clock budget of this invocation, validation included (checkpointed; --resume continues).")
@click.option("--max-epochs", type=int, default=None, help="Upper bound on epochs (default 200).")
@click.option("--seed", type=int, default=None, help="Seed of initialisation, data order and validation sample.")
@click.option("--resume", is_flag=True, help="Continue the run in OUT from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="TIGER setting, e.g. d_model=64, eval_users=0, recipe=packed (repeatable).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_tiger_cmd(data_dir, index_dir, out_dir, budget_minutes, max_epochs, seed, resume, overwrite, assignments, quiet) -> None:
    """Train TIGER (hybrid recipe by default: packed block-causal windows, each user's latest target
    encoded bidirectionally as at inference) and print a JSON summary.

    Validation NDCG@10 (on a seeded sample of eval_users validation users)
    drives early stopping; the best weights go to OUT/checkpoints/best.
    """
    import semid
    from semid.errors import ArtifactError, ParameterError
    from semid.gen.tiger.config import TigerConfig
    from semid.gen.tiger.train import train_tiger
    from semid.params import parse_assignments

    if out_dir.exists() and not (resume or overwrite):  # fail before any expensive work
        raise ArtifactError(f"{out_dir} already exists; pass --resume to continue it or --overwrite to replace it")
    if resume and overwrite:
        raise ParameterError("--resume and --overwrite exclude each other")
    if budget_minutes is not None and budget_minutes <= 0:
        raise ParameterError(f"--budget-minutes must be > 0, got {budget_minutes}")
    settings = parse_assignments(assignments)
    if max_epochs is not None:
        settings["max_epochs"] = str(max_epochs)
    if seed is not None:
        settings["seed"] = str(seed)
    config = TigerConfig().with_assignments(settings)
    tokenizer = semid.load(index_dir)
    dataset = semid.load_dataset(data_dir)
    summary = train_tiger(
        dataset, tokenizer, index_path=str(index_dir.resolve()), out=str(out_dir), config=config,
        budget_minutes=budget_minutes, resume=resume, overwrite=overwrite, progress=not quiet,
    )
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 reports
        click.echo(json.dumps(summary, indent=2, sort_keys=True))


commands = [train]
