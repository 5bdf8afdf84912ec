"""Language representations for CF: AlphaRec and RLMRec beside LightGCN and SASRec, trained in one run.

Per dataset and protocol: writes RLMRec's templated profiles (MiniLM) from that protocol's training
part, trains LightGCN, AlphaRec (frozen title embeddings -> MLP -> LightGCN -> InfoNCE), RLMRec-Con,
RLMRec-Gen and SASRec (CE) with the same per-model budget, evaluates each run's best weights on
every test user, and writes one section of ``benchmarks/results/lm_cf.md`` (hardware, load,
commands, seconds per epoch, peak memory)::

    .venv/bin/python benchmarks/bench_lm_cf.py --data cache/ml100k --embeddings cache/emb/ml100k-title.npz \\
        --work cache/lmcf-ml100k --budget-minutes 4 --section ml100k

Two protocols (``--protocols``):

- ``loo``: semid's leave-one-out, full ranking, scored twice: with the user's earlier items kept
  among the candidates (the TIGER protocol) and removed (the CF papers' masking); graph models
  validate with them removed (see :mod:`semid.gen.cf.protocol`);
- ``holdout``: the papers' own protocol, a random 8:1:1 split of each user's items, Recall / NDCG /
  Hit @10/20 over all held-out items with the training items masked.

Runs resume when their directory exists (the same command continues them).
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


def zero_shot_table(args, run: Path, fmt, keys) -> list[str]:
    """Rows of the trained AlphaRec run's zero-shot transfer to each ``--zero-shot`` dataset."""
    from semid.evaluation import MostPopular, evaluate
    from semid.gen.cf import zero_shot_recommender

    rows = []
    for spec in args.zero_shot:
        data_path, _, embeddings = spec.partition("=")
        target = semid.load_dataset(data_path)
        zero_shot = zero_shot_recommender(run, target, embeddings)
        popular = MostPopular(target)
        for name, model in (("AlphaRec, zero-shot", zero_shot), ("most popular (of the target)", popular)):
            kept = evaluate(model, target, split="test", ks=(10, 20), progress=False)
            excluded = evaluate(model, target, split="test", ks=(10, 20), exclude_seen=True, progress=False)
            rows.append(f"| {target.name} ({kept['n_users']} users) | {name} | {fmt(kept['metrics'], keys)} | "
                        f"{fmt(excluded['metrics'], keys)} |")
    return ["Zero-shot transfer of the leave-one-out AlphaRec run (no training on the target; a user is the MLP "
            "of the mean title embedding of its history), target's leave-one-out test, left: earlier items kept, "
            "right: removed.", "",
            "| target | model | R@10 | N@10 | R@20 | N@20 | R@10 excl. | N@10 excl. | R@20 excl. | N@20 excl. |",
            "|---|---|---|---|---|---|---|---|---|---|", *rows, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--embeddings", required=True, help="item text embeddings for AlphaRec (.npz)")
    parser.add_argument("--work", required=True, help="folder for the profiles and the runs")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--budget-minutes", type=float, default=3.0, help="per model and invocation")
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--eval-users", type=int, default=None, help="validation user sample (default: all)")
    parser.add_argument("--eval-every", type=int, default=5, help="validate every N epochs")
    parser.add_argument("--protocols", default="loo,holdout", help="comma-separated, from loo, holdout")
    parser.add_argument("--section", default="lm_cf")
    parser.add_argument("--zero-shot", action="append", default=[], metavar="DATA=EMBEDDINGS",
                        help="after training, evaluate the leave-one-out AlphaRec run zero-shot on this dataset "
                             "(title embeddings from the same encoder); repeatable")
    parser.add_argument("--zero-shot-only", action="store_true",
                        help="train nothing: only the --zero-shot table for the existing AlphaRec run in --work")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from semid.evaluation import MostPopular, evaluate, evaluate_holdout
    from semid.gen.cf import CFRecommender, SplitProtocol, TrainOptions, load_run, train_cf
    from semid.gen.cf.rlmrec import write_profiles

    dataset = semid.load_dataset(args.data)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    protocols = args.protocols.split(",")
    for name in protocols:
        if name not in ("loo", "holdout"):
            parser.error(f"unknown protocol {name!r}; choose from loo, holdout")
    for model in args.models.split(","):
        if model not in MODELS:
            parser.error(f"unknown model {model!r}; choose from {', '.join(MODELS)}")

    def fmt(m, keys):
        return " | ".join(f"{m[k]:.4f}" for k in keys)

    loo_keys = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
    if args.zero_shot_only:
        body = "\n".join([f"### AlphaRec trained on {dataset.name}, zero-shot on other datasets", "", stamp(),
                           *zero_shot_table(args, work / "alpharec", fmt, loo_keys)])
        replace_section(RESULTS, args.section, body)
        return
    holdout_keys = ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "hit@20")
    tables, profile_notes = [], []
    for protocol_name in protocols:
        protocol = SplitProtocol("holdout") if protocol_name == "holdout" else SplitProtocol()
        holdout = protocol.holdout(dataset)
        suffix = "" if protocol_name == "loo" else "-holdout"
        profiles = work / f"profiles{suffix}"
        started = time.perf_counter()
        if not (profiles / "items.npz").exists():
            write_profiles(dataset, profiles, progress=False, train_sequences=holdout.train if holdout else None)
        profile_notes.append(f"{protocol_name}: {time.perf_counter() - started:.0f} s")
        rows = []
        for model in args.models.split(","):
            run = work / f"{model}{suffix}"
            options = TrainOptions(max_epochs=args.max_epochs, budget_minutes=args.budget_minutes,
                                   eval_users=args.eval_users, eval_every=args.eval_every)
            t0 = time.perf_counter()
            train_cf(run, dataset, model_name=MODELS[model], overrides=None if run.exists() else settings_for(
                model, args, profiles), options=options, resume=run.exists(), progress=False,
                protocol=None if run.exists() else protocol)
            train_wall = time.perf_counter() - t0
            net, config, item_ids, user_ids = load_run(run)
            recommender = CFRecommender(net, item_ids, user_ids, max_len=config["config"].get("max_len", 50))
            t1 = time.perf_counter()
            if holdout is None:
                kept = evaluate(recommender, dataset, split="test", ks=(10, 20), progress=False)["metrics"]
                excluded = evaluate(recommender, dataset, split="test", ks=(10, 20), exclude_seen=True,
                                    progress=False)["metrics"]
                scores = f"{fmt(kept, loo_keys)} | {fmt(excluded, loo_keys)}"
            else:
                scores = fmt(evaluate_holdout(recommender, holdout, split="test", ks=(10, 20),
                                              progress=False)["metrics"], holdout_keys)
            eval_seconds = time.perf_counter() - t1
            events = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
            stop = [e for e in events if e["event"] == "stop"][-1]
            epochs = max((e["epoch"] for e in events if e["event"] == "epoch"), default=0)
            per_epoch = stop["train_seconds"] / max(epochs, 1)  # cumulative over the run's invocations
            rows.append(f"| {model} | {scores} | {epochs} ({stop['reason']}, best {stop['best_epoch']}) | "
                        f"{per_epoch:.2f} | {train_wall:.0f} | {eval_seconds:.1f} |")
            logging.info("%s %s: %s", protocol_name, model, rows[-1])
        if holdout is None:
            popular = MostPopular(dataset)
            kept = evaluate(popular, dataset, split="test", ks=(10, 20), progress=False)["metrics"]
            excluded = evaluate(popular, dataset, split="test", ks=(10, 20), exclude_seen=True,
                                progress=False)["metrics"]
            rows.append(f"| most popular | {fmt(kept, loo_keys)} | {fmt(excluded, loo_keys)} | - | - | - | - |")
            tables += [
                "Leave-one-out, every test user; left: earlier items kept among the candidates, right: removed.", "",
                "| model | R@10 | N@10 | R@20 | N@20 | R@10 excl. | N@10 excl. | R@20 excl. | N@20 excl. | epochs | "
                "s/epoch | train wall (s) | test eval (s) |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""]
        else:
            result = evaluate_holdout(MostPopular(dataset, holdout.train), holdout, split="test", ks=(10, 20),
                                      progress=False)
            rows.append(f"| most popular | {fmt(result['metrics'], holdout_keys)} | - | - | - | - |")
            tables += [
                f"The papers' protocol: random {':'.join(str(int(r * 10)) for r in holdout.ratios)} split of each "
                f"user's items (seed {holdout.seed}), {result['n_users']} test users, every held-out item a target, "
                "training and validation items masked.", "",
                "| model | R@10 | N@10 | R@20 | N@20 | HR@20 | epochs | s/epoch | train wall (s) | test eval (s) |",
                "|---|---|---|---|---|---|---|---|---|---|", *rows, ""]
    if args.zero_shot and "alpharec" in args.models.split(",") and "loo" in protocols:
        tables += zero_shot_table(args, work / "alpharec", fmt, loo_keys)
    n_users = len(dataset.sequences.user_ids)
    body = "\n".join([
        f"### {dataset.name}: {len(dataset.items)} items, {n_users} users", "",
        stamp(),
        f"- RLMRec profiles (templated from each protocol's training part, MiniLM): {', '.join(profile_notes)}; "
        f"AlphaRec's text embeddings: `{Path(args.embeddings).name}`",
        f"- budget {args.budget_minutes:g} min per model and invocation, validation every {args.eval_every} epochs",
        f"- peak memory of the script: {peak_rss_mb():.0f} MiB", "", *tables])
    if not RESULTS.exists():
        RESULTS.write_text("# Language representations for CF (AlphaRec, RLMRec)\n\nWritten by "
                           "`benchmarks/bench_lm_cf.py`.\n", encoding="utf-8")
    replace_section(RESULTS, args.section, body)


if __name__ == "__main__":
    main()
