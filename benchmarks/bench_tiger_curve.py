"""TIGER's learning curve on full Amazon Beauty, next to the published one.

Trains one TIGER run (resumable: run the same command again to continue where
the budget stopped it), validates every ``--eval-every`` epochs on a seeded
sample of validation users (R@10, N@10, distinct items in the top-10 lists,
teacher-forced NLL per code position), and, once ``--max-targets`` next-item
targets have been learned, evaluates the best checkpoint on every test user
(full ranking, seen items not excluded). Writes a Markdown section (hardware,
command, load, wall times) into ``benchmarks/results/tiger.md``.

    .venv/bin/python benchmarks/bench_tiger_curve.py --data data/beauty --index idx/rqkmeans \\
        --run runs/curve --max-targets 1000000 --budget-minutes 60

The published curve (Haneol99/semantic-id-recsys, paper-style HF-T5 TIGER,
batch 256; see shared research notes) is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bench_tiger_common import machine_facts, replace_section  # noqa: E402

import semid  # noqa: E402

logger = logging.getLogger("bench_tiger_curve")

#: Most-popular N@10 on the published run's 2,000 validation users (Haneol99 STATUS.md). Context
#: only: on 2,000 users the baseline has ~25 hits, so it is too noisy to normalise a curve by
#: (measured: our sample reads 0.83x the full split for popularity but 1.15x for the model).
PUBLISHED_POPULARITY_NDCG10 = 0.0087

#: (targets, subset-valid R@10 or None, subset-valid N@10, note) of the published curve.
PUBLISHED = [
    (256_000, None, 0.0258, "step 1k"),
    (512_000, 0.057, 0.0298, "step 2k, train loss 2.57, per position 4.81/3.84/1.49/0.05"),
    (5_630_000, None, 0.0477, "best checkpoint (step 22k): test R@10 0.0651 / N@10 0.0346"),
]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="dataset directory (semid format), e.g. full Beauty")
    parser.add_argument("--index", required=True, help="index directory")
    parser.add_argument("--run", required=True, help="run directory (created, or resumed when it exists)")
    parser.add_argument("--max-targets", type=float, default=1e6, help="train until this many targets")
    parser.add_argument("--budget-minutes", type=float, default=None, help="training time of this invocation")
    parser.add_argument("--eval-every", type=int, default=2, help="epochs between validations")
    parser.add_argument("--eval-users", type=int, default=2000)
    parser.add_argument("--test-users", type=int, default=0, help="0 = every test user")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--section", default="bench_tiger_curve")
    parser.add_argument("--results", default=str(ROOT / "results" / "tiger.md"))
    parser.add_argument("--no-test", action="store_true", help="skip the test evaluation")
    return parser.parse_args(argv)


def curve_rows(log: list[dict]) -> list[dict]:
    """Join epoch events (loss, step) with the validation that followed them.

    A validation in the middle of an epoch (the last one of an invocation its budget stopped) takes
    its target count from the stop event at the same step, and its epoch is marked ``(mid)``.
    """
    rows, loss_by_epoch, epoch_end_step = [], {}, {}
    per_epoch = None
    for event in log:
        kind = event.get("event")
        if kind == "start":
            per_epoch = event.get("n_targets")
        elif kind == "epoch":
            loss_by_epoch[event["epoch"]] = event["loss"]
            epoch_end_step[event["epoch"]] = event["step"]
        elif kind == "valid":
            epoch = event["epoch"]
            whole = epoch_end_step.get(epoch) == event["step"]
            targets = epoch * per_epoch if per_epoch else None
            rows.append({**event, "targets": targets, "train_loss": loss_by_epoch.get(epoch) if whole else None,
                         "mid_epoch": not whole})
        elif kind == "stop" and rows and rows[-1]["mid_epoch"] and rows[-1]["step"] == event["step"]:
            rows[-1]["targets"] = event.get("targets_seen", rows[-1]["targets"])
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    from semid.data.dataset import load_dataset
    from semid.evaluation import MostPopular, evaluate
    from semid.evaluation.split import leave_one_out
    from semid.gen.runs import open_run
    from semid.gen.tiger import TigerConfig, load_tiger, train_tiger

    dataset = load_dataset(args.data)
    tokenizer = semid.load(args.index)
    targets_per_epoch = sum(max(len(s) - 1, 0) for s in leave_one_out(dataset).train_sequences)
    max_epochs = max(1, math.ceil(args.max_targets / targets_per_epoch))
    assignments = dict(a.split("=", 1) for a in args.assignments)
    config = TigerConfig().with_assignments(assignments)
    config.max_epochs = max_epochs
    config.eval_every = args.eval_every
    config.eval_users = args.eval_users
    config.patience = 10_000  # the curve runs to max-targets; `best` still tracks validation
    resume = Path(args.run).exists()
    started = time.time()
    summary = train_tiger(
        dataset, tokenizer, index_path=args.index, out=args.run, config=config,
        budget_minutes=args.budget_minutes, resume=resume, progress=False,
    )
    wall = time.time() - started
    run = open_run(args.run)
    rows = curve_rows(run.read_log())
    finished = summary["stopped"] == "max_epochs"
    test = None
    test_path = Path(args.run) / "curve_test.json"
    if finished and not args.no_test:
        if test_path.exists() and json.loads(test_path.read_text()).get("steps") == summary["steps"]:
            test = json.loads(test_path.read_text())
        else:
            recommender = load_tiger(args.run, index_path=args.index)
            result = evaluate(recommender, dataset, split="test", ks=(5, 10),
                              n_users=args.test_users or None, progress=False)
            best_epoch = summary["best_epoch"]
            test = {"steps": summary["steps"], "best_epoch": best_epoch, "n_users": result["n_users"],
                    "targets_at_best": best_epoch * targets_per_epoch if best_epoch else None,
                    "metrics": result["metrics"], "seconds": result["seconds"]}
            test_path.write_text(json.dumps(test, indent=2))
    # The baseline on exactly the validation users of the curve (evaluate draws them as training does).
    popular = evaluate(MostPopular(dataset), dataset, split="valid", ks=(10,), max_history=config.max_history,
                       n_users=config.eval_users or None, seed=config.seed, progress=False,
                       beyond_accuracy=False)["metrics"]
    pop_ndcg = popular["ndcg@10"]
    facts = machine_facts()
    lines = [
        f"Run `{Path(args.run).name}`: {summary['epochs']} epochs ({summary['epochs'] * targets_per_epoch:,} "
        f"targets, {targets_per_epoch:,} per epoch), training time {summary['train_seconds'] / 60:.1f} min "
        f"(this invocation {wall / 60:.1f} min wall), stopped: {summary['stopped']}.",
        f"Settings: `{json.dumps(config.to_dict(), sort_keys=True)}`; index `{Path(args.index).name}` "
        f"({tokenizer.scheme}).",
        "",
        f"- date {facts['date']}, cpu {facts['cpu']}, gpu {facts['gpu']}, torch {facts['torch']}, "
        f"load {facts['load']}",
        f"- command: `{facts['command']}`",
        "",
        "| epoch | targets | train loss (epoch mean) | valid R@10 | valid N@10 | distinct@10 | "
        "valid NLL per position |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        nll = " / ".join(f"{x:.2f}" for x in row.get("position_nll", []))
        lines.append(
            f"| {row['epoch']}{' (mid)' if row.get('mid_epoch') else ''} | {row['targets']:,} | "
            f"{row['train_loss'] if row['train_loss'] is not None else '-'} | {row['recall@10']:.4f} | "
            f"{row['ndcg@10']:.4f} | {row.get('distinct@10', '-')} | {nll} |"
        )
    lines += ["", f"Validation users per row: {config.eval_users} (seeded sample); most popular on the same "
              f"users: R@10 {popular['recall@10']:.4f} / N@10 {pop_ndcg:.4f}.", ""]
    if test:
        m = test["metrics"]
        lines.append(
            f"**Test, best checkpoint (epoch {test['best_epoch']}, {test['targets_at_best']:,} targets), "
            f"{test['n_users']:,} users, full ranking:** R@5 {m['recall@5']:.4f} / N@5 {m['ndcg@5']:.4f} / "
            f"R@10 {m['recall@10']:.4f} / N@10 {m['ndcg@10']:.4f}, coverage@10 "
            f"{m.get('coverage@10', float('nan')):.4f} ({test['seconds']:.0f} s)."
        )
        lines.append("")
    lines.append(f"Published curve (Haneol99, subset-valid on 2,000 users; most popular on those users: N@10 "
                 f"{PUBLISHED_POPULARITY_NDCG10}):")
    lines.append("")
    lines.append("| targets | valid R@10 | valid N@10 | note |")
    lines.append("|---|---|---|---|")
    for t, r, n, note in PUBLISHED:
        lines.append(f"| {t:,} | {r if r is not None else '-'} | {n} | {note} |")
    replace_section(args.results, args.section, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
