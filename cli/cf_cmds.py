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


def _parse_ratios(text: str) -> tuple[float, ...]:
    """Numbers of ``--split-ratios``; :class:`~semid.gen.cf.SplitProtocol` checks that they are shares."""
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected three comma-separated numbers such as 0.8,0.1,0.1, got {text!r}",
                                 param_hint="--split-ratios") from None


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
@click.option("--protocol", type=click.Choice(["leave-one-out", "holdout"]), default=None,
              help="Split to learn from: leave-one-out (default) or the graph-CF papers' random hold-out.")
@click.option("--split-ratios", default="0.8,0.1,0.1", show_default=True,
              help="Hold-out (train, valid, test) shares per user.")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Seed of the hold-out split.")
def train(model, data_path, run, epochs, budget_minutes, seed, resume, overwrite, patience, eval_every, eval_users,
          threads, settings, protocol, split_ratios, split_seed):
    """Train MODEL on the training part of the split; prints the result JSON.

    Under leave-one-out, graph models (alpharec, lightgcn, rlmrec) validate with the
    user's earlier items removed from the candidates; under --protocol holdout every
    model does.
    """
    from semid import load_dataset
    from semid.gen.cf import SplitProtocol, TrainOptions, train_cf
    from semid.params import parse_assignments

    _threads(threads)
    dataset = load_dataset(data_path)
    options = TrainOptions(max_epochs=epochs, patience=patience, eval_every=eval_every,
                           eval_users=eval_users, budget_minutes=budget_minutes)
    chosen = None
    if protocol is not None:
        chosen = SplitProtocol(protocol, _parse_ratios(split_ratios), split_seed)
    summary = train_cf(run, dataset, model_name=model, overrides=parse_assignments(settings) or None,
                       seed=seed, options=options, resume=resume, overwrite=overwrite, protocol=chosen)
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
    """Full-ranking evaluation of a trained run under its protocol; JSON to stdout.

    A leave-one-out run is scored on the held-out next item (--exclude-seen masks
    earlier items); a hold-out run on its held-out item sets, training items
    always masked (Recall / NDCG / Hit @K).
    """
    from semid import load_dataset
    from semid.evaluation import evaluate, evaluate_holdout
    from semid.gen.cf import CFRecommender, SplitProtocol, load_run
    from semid.gen.cf.run import check_dataset

    from .eval_cmds import _parse_ks

    _threads(threads)
    k_list = _parse_ks(ks)
    dataset = load_dataset(data_path)
    model, config, item_ids, user_ids = load_run(run)
    check_dataset(run, dataset, training=False)
    recommender = CFRecommender(model, item_ids, user_ids, max_len=config["config"].get("max_len", 50))
    protocol = SplitProtocol.from_json(config["protocol"])
    if protocol.is_holdout:
        result = evaluate_holdout(recommender, protocol.holdout(dataset), split=split, ks=k_list,
                                  n_users=n_users, seed=seed)
    else:
        result = evaluate(recommender, dataset, split=split, ks=k_list, exclude_seen=exclude_seen,
                          n_users=n_users, seed=seed)
    result["run"] = {"path": str(run), "model": config["model"], "config": config["config"]}
    click.echo(json.dumps(result, sort_keys=True, indent=2))


@cf.command("zero-shot")
@click.argument("run", type=click.Path())
@click.option("--data", "data_path", required=True, help="A dataset the AlphaRec run was NOT trained on.")
@click.option("--embeddings", required=True, type=click.Path(),
              help="Title embeddings of that dataset's items, from the run's text encoder (semid embed --fields title).")
@click.option("--split", type=click.Choice(["test", "valid"]), default="test", show_default=True)
@click.option("--k", "ks", default="1,5,10,20", show_default=True, help="Cut-offs, comma separated.")
@click.option("--exclude-seen", is_flag=True, help="Remove the user's earlier items from the candidates.")
@click.option("--users", "n_users", type=int, default=None, help="Evaluate a seeded sample of N users.")
@click.option("--seed", type=int, default=0, show_default=True)
def zero_shot_cmd(run, data_path, embeddings, split, ks, exclude_seen, n_users, seed):
    """Leave-one-out evaluation of a trained AlphaRec RUN on another dataset, without training on it.

    Each item is the run's MLP of its title embedding; a user the MLP of the mean
    title embedding of its history (AlphaRec's zero-shot setting). JSON to stdout.
    """
    from semid import load_dataset
    from semid.evaluation import evaluate
    from semid.gen.cf import zero_shot_recommender

    from .eval_cmds import _parse_ks

    dataset = load_dataset(data_path)
    recommender = zero_shot_recommender(run, dataset, embeddings)
    result = evaluate(recommender, dataset, split=split, ks=_parse_ks(ks), exclude_seen=exclude_seen,
                      n_users=n_users, seed=seed)
    result["run"] = {"path": str(run), "model": "alpharec", "zero_shot": True}
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
@click.option("--writer", type=click.Choice(["template", "llm"]), default="template", show_default=True,
              help="Who writes the profiles: templates from item text, or an LLM (RLMRec's way; one call per "
                   "user and item).")
@click.option("--noun", default="item", show_default=True, help="What the LLM prompts call an item (movie, product).")
@click.option("--llm", default=None, help="Local causal LM folder for --writer llm (default: SmolLM2-135M-Instruct).")
@click.option("--server", default=None, help="OpenAI-compatible server for --writer llm.")
@click.option("--llm-model", "llm_model", default=None, help="Model name on the --server.")
@click.option("--cache", "cache_dir", type=click.Path(), default=None, help="On-disk cache of server answers.")
@click.option("--protocol", type=click.Choice(["leave-one-out", "holdout"]), default="leave-one-out",
              show_default=True, help="Whose training part the profiles may read: the same as the RLMRec run's.")
@click.option("--split-ratios", default="0.8,0.1,0.1", show_default=True, help="Hold-out shares (--protocol holdout).")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Hold-out seed (--protocol holdout).")
def profiles_cmd(data_path, out, model, writer, noun, llm, server, llm_model, cache_dir, protocol, split_ratios,
                 split_seed):
    """User and item profiles from the training split, embedded (RLMRec's semantic side).

    Profiles read only the training part of the split the RLMRec run will train on, so
    pass the run's --protocol (and hold-out settings).
    """
    from semid import load_dataset
    from semid.gen.cf import SplitProtocol
    from semid.gen.cf.rlmrec import write_profiles

    backend = None
    if writer == "llm":
        from semid.gen.llm.backend import make_backend

        backend = make_backend(llm, server=server, model=llm_model, cache_dir=cache_dir)
    dataset = load_dataset(data_path)
    holdout = SplitProtocol(protocol, _parse_ratios(split_ratios), split_seed).holdout(dataset)
    facts = write_profiles(dataset, out, model=model, backend=backend, noun=noun,
                           train_sequences=holdout.train if holdout else None)
    click.echo(f"wrote {out}/users.npz, {out}/items.npz and {out}/profiles.json ({json.dumps(facts)})", err=True)


commands = [cf]
