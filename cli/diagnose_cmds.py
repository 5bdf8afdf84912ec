"""``semid diagnose``: is a trained generator conditioning on the history?"""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["commands", "diagnose"]


@click.group("diagnose")
def diagnose() -> None:
    """Collapse diagnostics of a trained generator (JSON on stdout)."""


@diagnose.command("tiger")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--data", "data_dir", required=True, help="Dataset directory the run was trained on (or builtin:NAME).")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None,
              help="Index directory (default: the one recorded in the run).")
@click.option("--checkpoint", default="best", show_default=True, help="Checkpoint name: best or last.")
@click.option("--users", type=int, default=2000, show_default=True, help="Seeded sample of users (0 = all).")
@click.option("--split", type=click.Choice(["valid", "test"]), default="valid", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--beams", type=int, default=None, help="Beams for the top-10 lists (default: the run's eval_beams).")
def diagnose_tiger_cmd(run, data_dir, index_dir, checkpoint, users, split, seed, beams) -> None:
    """Per-position NLL vs code unigram/bigram tables, distinct@10, swap test,
    zeroed-encoder KL, encoder cosine between users, weight growth; a verdict.

    Exit status 0 either way; the verdict is in the JSON ("healthy" or "collapsed").
    """
    import semid
    from semid.errors import ParameterError
    from semid.gen.tiger.diagnostics import diagnose_run

    if users < 0:
        raise ParameterError(f"--users must be >= 0, got {users}")
    dataset = semid.load_dataset(data_dir)
    report = diagnose_run(run, dataset, index_path=index_dir, checkpoint=checkpoint, users=users, split=split,
                          seed=seed, num_beams=beams)
    click.echo(json.dumps(report, indent=2))


@diagnose.command("lcrec")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--data", "data_dir", required=True, help="Dataset directory the run was trained on (or builtin:NAME).")
@click.option("--users", type=int, default=200, show_default=True, help="Seeded sample of users (0 = all).")
@click.option("--split", type=click.Choice(["valid", "test"]), default="valid", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--beams", type=int, default=None, help="Beams for the top-10 lists (default: the run's num_beams).")
def diagnose_lcrec_cmd(run, data_dir, users, split, seed, beams) -> None:
    """Per-position NLL of the target's code tokens (whole vocabulary and within each level) vs
    code unigram/bigram tables, distinct@10, swap test, KL of the first code under another
    user's history; a verdict. Exit status 0 either way.
    """
    import semid
    from semid.errors import ParameterError
    from semid.gen.lcrec.diagnostics import diagnose_lcrec_run

    if users < 0:
        raise ParameterError(f"--users must be >= 0, got {users}")
    dataset = semid.load_dataset(data_dir)
    click.echo(json.dumps(diagnose_lcrec_run(run, dataset, users=users, split=split, seed=seed, num_beams=beams),
                          indent=2))


@diagnose.command("lists")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--data", "data_dir", required=True, help="Dataset directory the run was trained on (or builtin:NAME).")
@click.option("--users", type=int, default=500, show_default=True, help="Seeded sample of users (0 = all).")
@click.option("--split", type=click.Choice(["valid", "test"]), default="valid", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def diagnose_lists_cmd(run, data_dir, users, split, seed) -> None:
    """Distinct items in the top-10 lists and the swap test, for any run (TIGER, LC-Rec, CF).

    The verdict is "collapsed" when the lists hold fewer distinct items than the
    collapse floor or when swapping two users' histories leaves their lists mostly unchanged.
    """
    import semid
    from semid.errors import ParameterError
    from semid.evaluation import leave_one_out
    from semid.gen.collapse import HEALTHY, list_diversity
    from semid.evaluation.split import sample_cases

    from .eval_cmds import load_recommender

    if users < 0:
        raise ParameterError(f"--users must be >= 0, got {users}")
    dataset = semid.load_dataset(data_dir)
    cases = sample_cases(leave_one_out(dataset).cases(split), users, seed)
    recommender = load_recommender(run, dataset=dataset)
    report = list_diversity(recommender, cases, seed=seed, n_items=len(dataset.items))
    side, level = HEALTHY["swap_overlap@10"]
    reasons = []
    if report["distinct@10"] < report["collapse_floor"]:
        reasons.append(f"distinct@10 {report['distinct@10']} < floor {report['collapse_floor']}")
    if report["swap_overlap@10"] >= level:
        reasons.append(f"swap_overlap@10 {report['swap_overlap@10']} is not {side} {level}")
    report.update(run=str(run), split=split, seed=seed, verdict="collapsed" if reasons else "healthy",
                  reasons=reasons)
    click.echo(json.dumps(report, indent=2))


commands = [diagnose]
