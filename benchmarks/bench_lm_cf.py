"""Language representations for CF: AlphaRec and RLMRec beside LightGCN and SASRec, trained in one run.

Per dataset: writes RLMRec's templated profiles (MiniLM) once, trains LightGCN, AlphaRec (frozen
title embeddings -> MLP -> LightGCN -> InfoNCE), RLMRec-Con and SASRec (CE) with the same
per-model budget, evaluates each run's best weights on every test user (leave-one-out, full
ranking, seen items not excluded) at R@10/20 and N@10/20, and writes one section of
``benchmarks/results/lm_cf.md`` (hardware, load, commands, seconds per epoch, peak memory)::

    .venv/bin/python benchmarks/bench_lm_cf.py --data cache/ml100k --embeddings cache/emb/ml100k-minilm.npz \\
        --work cache/lmcf-ml100k --budget-minutes 3 --section ml100k

Runs resume when their directory exists (the same command continues them). The papers' own
protocol (random 8:1:1 splits, Recall/NDCG@20 over all held-out items) is not implemented here.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import peak_rss_mb, stamp  # noqa: E402
from bench_tiger_common import replace_section  # noqa: E402

import semid  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "lm_cf.md"
#: run name -> semid CF model
MODELS = {"lightgcn": "lightgcn", "alpharec": "alpharec", "rlmrec-con": "rlmrec", "rlmrec-gen": "rlmrec",
          "sasrec": "sasrec"}


def settings_for(name: str, args, profiles: Path) -> dict:
    if name == "alpharec":
        return {"embeddings": str(Path(args.embeddings).resolve())}
    if name.startswith("rlmrec"):
        return {"profiles": str(profiles.resolve()), "mode": name.split("-")[1]}
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--embeddings", required=True, help="item text embeddings for AlphaRec (.npz)")
    parser.add_argument("--work", required=True, help="folder for the profiles and the runs")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--budget-minutes", type=float, default=3.0, help="per model and invocation")
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--eval-users", type=int, default=None, help="validation user sample (default: all)")
    parser.add_argument("--section", default="lm_cf")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from semid.evaluation import MostPopular, evaluate
    from semid.gen.cf import CFRecommender, TrainOptions, load_run, train_cf
    from semid.gen.cf.rlmrec import write_profiles

    dataset = semid.load_dataset(args.data)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    profiles = work / "profiles"
    started = time.perf_counter()
    if not (profiles / "items.npz").exists():
        write_profiles(dataset, profiles, progress=False)
    profile_seconds = time.perf_counter() - started

    rows = []
    for model in args.models.split(","):
        if model not in MODELS:
            parser.error(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
        run = work / model
        options = TrainOptions(max_epochs=args.max_epochs, budget_minutes=args.budget_minutes,
                               eval_users=args.eval_users)
        t0 = time.perf_counter()
        train_cf(run, dataset, model_name=MODELS[model], overrides=None if run.exists() else settings_for(
            model, args, profiles), options=options, resume=run.exists(), progress=False)
        train_wall = time.perf_counter() - t0
        net, config, item_ids, user_ids = load_run(run)
        recommender = CFRecommender(net, item_ids, user_ids, max_len=config["config"].get("max_len", 50))
        t1 = time.perf_counter()
        test = evaluate(recommender, dataset, split="test", ks=(10, 20), progress=False)
        eval_seconds = time.perf_counter() - t1
        events = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
        stop = [e for e in events if e["event"] == "stop"][-1]
        epochs = max(e["epoch"] for e in events if e["event"] == "epoch")
        train_seconds = stop["train_seconds"]  # cumulative over the run's invocations
        per_epoch = train_seconds / max(epochs, 1)
        m = test["metrics"]
        rows.append(f"| {model} | {m['recall@10']:.4f} | {m['ndcg@10']:.4f} | {m['recall@20']:.4f} | "
                    f"{m['ndcg@20']:.4f} | {epochs} ({stop['reason']}, best {stop['best_epoch']}) | "
                    f"{per_epoch:.2f} | {train_wall:.0f} | {eval_seconds:.1f} |")
        logging.info("%s: %s", model, rows[-1])
    popularity = evaluate(MostPopular(dataset), dataset, split="test", ks=(10, 20), progress=False)["metrics"]
    rows.append(f"| most popular | {popularity['recall@10']:.4f} | {popularity['ndcg@10']:.4f} | "
                f"{popularity['recall@20']:.4f} | {popularity['ndcg@20']:.4f} | - | - | - | - |")
    n_users = len(dataset.sequences.user_ids)
    body = "\n".join([
        f"### {dataset.name}: {len(dataset.items)} items, {n_users} users, every test user counted", "",
        stamp(),
        f"- RLMRec profiles (templated from the training split, MiniLM): {profile_seconds:.0f} s; "
        f"AlphaRec's text embeddings: `{Path(args.embeddings).name}`",
        f"- peak memory of the script: {peak_rss_mb():.0f} MiB", "",
        "| model | R@10 | N@10 | R@20 | N@20 | epochs | s/epoch | train wall (s) | test eval (s) |",
        "|---|---|---|---|---|---|---|---|---|", *rows, ""])
    if not RESULTS.exists():
        RESULTS.write_text("# Language representations for CF (AlphaRec, RLMRec)\n\nWritten by "
                           "`benchmarks/bench_lm_cf.py`; leave-one-out, full ranking, seen items not excluded.\n",
                           encoding="utf-8")
    replace_section(RESULTS, args.section, body)


if __name__ == "__main__":
    main()
