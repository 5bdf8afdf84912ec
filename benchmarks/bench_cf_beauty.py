"""SASRec (and optionally LightGCN) on Amazon Beauty 2014 beside the published numbers.

For each run: train on the training part of the leave-one-out split with a wall-time
budget (resuming the run directory if it exists), evaluate the best-validation weights
on the test split with full ranking (with and without excluding seen items), then
write ``benchmarks/results/cf.md``::

    .venv/bin/python benchmarks/bench_cf_beauty.py --runs sasrec64,sasrec32 --budget-minutes 34
    .venv/bin/python benchmarks/bench_cf_beauty.py --report-only     # collect finished runs

Runs live in ``--runs-dir`` (default ``cache/runs``) as ``beauty-<name>``; the
32-d SASRec is the one whose item embeddings LETTER uses.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import semid  # noqa: E402
from semid.evaluation import evaluate  # noqa: E402
from semid.gen.cf import CFRecommender, TrainOptions, load_run, read_config, train_cf  # noqa: E402

from _data import CACHE_ROOT, ensure_beauty  # noqa: E402
from _env import stamp  # noqa: E402

#: name -> (model, settings)
RUNS = {
    "sasrec64": ("sasrec", {}),
    "sasrec32": ("sasrec", {"hidden": 32}),
    "lightgcn": ("lightgcn", {}),
}

PUBLISHED = [
    ("SASRec, BCE loss (TIGER paper table)", "0.0387", "0.0249", "0.0605", "0.0318"),
    ("SASRec, CE loss, compact 2x64 (ANCHORS: 2-core CPU, best valid at epoch 70)", "0.0558", "0.0319", "0.0844", "0.0412"),
    ("SASRec, CE loss, same, seen items excluded (ANCHORS)", "-", "-", "0.0923", "0.0565"),
    ("SASRec with CE loss (several reproductions)", "0.054-0.060", "0.032-0.042", "0.074-0.086", "0.040-0.050"),
    ("TIGER (TIGER paper)", "0.0454", "0.0321", "0.0648", "0.0384"),
    ("LETTER-TIGER (LETTER paper)", "0.0431", "0.0286", "0.0672", "0.0364"),
]


def _test_results(run: Path, dataset) -> dict:
    """Test metrics of the best weights (cached next to the run as JSON)."""
    out = {}
    model, config, item_ids, user_ids = load_run(run)
    recommender = CFRecommender(model, item_ids, user_ids, max_len=config["config"].get("max_len", 50))
    for exclude in (False, True):
        cache = run.parent / f"{run.name}.test{'-exclude' if exclude else ''}.json"
        if cache.exists() and cache.stat().st_mtime >= (run / "model.safetensors").stat().st_mtime:
            out[exclude] = json.loads(cache.read_text())
            continue
        result = evaluate(recommender, dataset, split="test", ks=(5, 10, 20), exclude_seen=exclude, progress=False)
        cache.write_text(json.dumps(result, sort_keys=True, indent=2) + "\n")
        out[exclude] = result
    return out


def _row(name: str, metrics: dict) -> str:
    m = metrics["metrics"]
    return f"| {name} | {m['recall@5']:.4f} | {m['ndcg@5']:.4f} | {m['recall@10']:.4f} | {m['ndcg@10']:.4f} |"


def write_report(runs_dir: Path, names: list[str], dataset, out: Path, commands: list[str]) -> None:
    lines = [
        "# CF baselines on Amazon Beauty 2014 (leave-one-out, full ranking)",
        "",
        "Protocol: `semid.evaluation.evaluate` - per user, last item = test, second-to-last = validation,",
        "training = the rest (s[:-2]); test history = s[:-1] truncated to the last 20 items (it includes the",
        "validation item); full ranking over all 12,101 items; every test user counts (22,363).",
        "Models train on s[:-2] only (no retraining on s[:-1] for the test). Early stopping / best epoch by",
        "validation NDCG@10 on a seeded sample of validation users (`--eval-users`, stated below).",
        "",
        stamp(),
    ]
    if commands:
        lines += ["Commands that produced the runs:", "", "```", *commands, "```", ""]
    table = ["| model | R@5 | N@5 | R@10 | N@10 |", "|---|---|---|---|---|"]
    details = ["| run | settings | epochs done | stopped | best epoch | valid N@10 (sample) | s/epoch (train) | wall (train, s) |",
               "|---|---|---|---|---|---|---|---|"]
    for name in names:
        run = runs_dir / f"beauty-{name}"
        if not (run / "model.safetensors").exists():
            details.append(f"| {name} | (no finished epoch) | | | | | | |")
            continue
        config = read_config(run)
        result = json.loads((run / "result.json").read_text())
        history = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        per_epoch = sum(r["train_seconds"] for r in history) / max(len(history), 1)
        tests = _test_results(run, dataset)
        label = f"semid {config['model']} ({name}, {result['epochs']} epochs, best {result['best_epoch']})"
        table.append(_row(f"**{label}**", tests[False]))
        table.append(_row(f"**{label}, seen items excluded**", tests[True]))
        settings = json.dumps(config["config"], sort_keys=True)
        details.append(
            f"| {name} | `{settings}`, eval_users={config['options']['eval_users']} | {result['epochs']} | "
            f"{result['stopped']} | {result['best_epoch']} | {result['best_valid_ndcg@10']:.4f} | "
            f"{per_epoch:.1f} | {result['train_seconds']:.0f} |"
        )
    table += [f"| {n} | {a} | {b} | {c} | {d} |" for n, a, b, c, d in PUBLISHED]
    lines += ["## Test metrics beside the published numbers", "", *table, "", "## Runs", "", *details, ""]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="sasrec64,sasrec32", help=f"comma-separated, from {sorted(RUNS)}")
    parser.add_argument("--runs-dir", default=str(CACHE_ROOT / "runs"))
    parser.add_argument("--budget-minutes", type=float, default=34.0, help="per run and invocation")
    parser.add_argument("--eval-users", type=int, default=6000)
    parser.add_argument("--report-only", action="store_true", help="do not train; report the runs that exist")
    parser.add_argument("--command-log", default=None, help="file whose lines are quoted as the commands that ran")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cf.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    names = [n.strip() for n in args.runs.split(",") if n.strip()]
    dataset = semid.load_dataset(ensure_beauty())
    runs_dir = Path(args.runs_dir)
    for name in names if not args.report_only else []:
        model, settings = RUNS[name]
        run = runs_dir / f"beauty-{name}"
        started = time.perf_counter()
        train_cf(run, dataset, model_name=model, overrides=None if run.exists() else settings,
                 options=TrainOptions(max_epochs=200, eval_users=args.eval_users, budget_minutes=args.budget_minutes),
                 resume=run.exists(), progress=False)
        logging.info("%s: %.0f s", name, time.perf_counter() - started)
    commands = Path(args.command_log).read_text().splitlines() if args.command_log else []
    write_report(runs_dir, names, dataset, Path(args.out), commands)


if __name__ == "__main__":
    main()
