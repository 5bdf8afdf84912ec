"""CF commands: ``semid cf train``, ``semid cf evaluate``, ``semid cf export-embeddings``.

torch loads only when a command runs, so ``semid --help`` stays fast.
"""

from __future__ import annotations

import json

import click

__all__ = ["commands"]


def _threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@click.group("cf")
def cf() -> None:
    """Collaborative-filtering baselines (SASRec, LightGCN): train, evaluate, export embeddings."""


@cf.command("train")
@click.argument("model", type=click.Choice(["alpharec", "lightgcn", "rlmrec", "sasrec"]))
@click.option("--data", "data_path", required=True, help="Dataset directory (or builtin:NAME).")
@click.option("--out", "run", required=True, type=click.Path(), help="Run directory to create (or resume).")
@click.option("--max-epochs", "epochs", type=int, default=200, show_default=True,
              help="Maximum number of epochs in total.")
@click.option("--budget-minutes", type=float, default=None,
              help="Wall-clock budget of this invocation, validation included; resumable.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an existing CF run in --out.")
@click.option("--patience", type=int, default=10, show_default=True, help="Evaluations without improvement before stopping.")
@click.option("--eval-every", type=int, default=1, show_default=True, help="Validate every N epochs.")
@click.option("--eval-users", type=int, default=None, help="Validate on a seeded sample of this many users (default: all).")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Model setting, e.g. hidden=32 (repeatable).")
def train(model, data_path, run, epochs, budget_minutes, seed, resume, overwrite, patience, eval_every, eval_users,
          threads, settings):
    """Train MODEL on the training part of the leave-one-out split; prints the result JSON."""
    from semid import load_dataset
    from semid.gen.cf import TrainOptions, train_cf
    from semid.params import parse_assignments

    _threads(threads)
    dataset = load_dataset(data_path)
    options = TrainOptions(max_epochs=epochs, patience=patience, eval_every=eval_every,
                           eval_users=eval_users, budget_minutes=budget_minutes)
    summary = train_cf(run, dataset, model_name=model, overrides=parse_assignments(settings) or None,
                       seed=seed, options=options, resume=resume, overwrite=overwrite)
    click.echo(json.dumps(summary, sort_keys=True, indent=2))


@cf.command("evaluate")
@click.argument("run", type=click.Path())
@click.option("--data", "data_path", required=True, help="Dataset directory the run was trained on.")
@click.option("--split", type=click.Choice(["test", "valid"]), default="test", show_default=True)
@click.option("--k", "ks", default="1,5,10,20", show_default=True, help="Cut-offs, comma separated.")
@click.option("--exclude-seen", is_flag=True, help="Remove the user's earlier items from the candidates.")
@click.option("--users", "n_users", type=int, default=None, help="Evaluate a seeded sample of N users.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
def evaluate_cmd(run, data_path, split, ks, exclude_seen, n_users, seed, threads):
    """Full-ranking leave-one-out evaluation of a trained run; JSON to stdout."""
    from semid import load_dataset
    from semid.evaluation import evaluate
    from semid.gen.cf import CFRecommender, load_run
    from semid.gen.cf.run import check_dataset

    from .eval_cmds import _parse_ks

    _threads(threads)
    k_list = _parse_ks(ks)
    dataset = load_dataset(data_path)
    model, config, item_ids, user_ids = load_run(run)
    check_dataset(run, dataset, training=False)
    recommender = CFRecommender(model, item_ids, user_ids, max_len=config["config"].get("max_len", 50))
    result = evaluate(recommender, dataset, split=split, ks=k_list, exclude_seen=exclude_seen,
                      n_users=n_users, seed=seed)
    result["run"] = {"path": str(run), "model": config["model"], "config": config["config"]}
    click.echo(json.dumps(result, sort_keys=True, indent=2))


@cf.command("export-embeddings")
@click.argument("run", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Embedding file to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
def export_embeddings(run, out, overwrite):
    """Write the run's item embeddings (rows in dataset item order)."""
    from semid.gen.cf import export_item_embeddings

    path = export_item_embeddings(run, out, overwrite=overwrite)
    click.echo(f"wrote {path}", err=True)


@cf.command("profiles")
@click.option("--data", "data_path", required=True, help="Dataset directory (or builtin:NAME).")
@click.option("--out", required=True, type=click.Path(), help="Directory for users.npz and items.npz.")
@click.option("--model", default=None, help="Local sentence-transformers folder (default: all-MiniLM-L6-v2).")
def profiles_cmd(data_path, out, model):
    """Template user and item profiles from the training split, embedded (RLMRec's semantic side)."""
    from semid import load_dataset
    from semid.gen.cf.rlmrec import write_profiles

    write_profiles(load_dataset(data_path), out, model=model)
    click.echo(f"wrote {out}/users.npz and {out}/items.npz", err=True)


commands = [cf]
