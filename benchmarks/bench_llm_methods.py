"""LLM methods on real data with the real SmolLM2-135M-Instruct: TALLRec and LLMRank.

Records, in ``benchmarks/results/llm.md`` (one section per method), the metrics,
the paper's number on its own protocol, a popularity baseline on the same
candidates, seconds per user and peak memory::

    .venv/bin/python benchmarks/bench_llm_methods.py tallrec --ml100k cache/data/ml100k --samples 64
    .venv/bin/python benchmarks/bench_llm_methods.py llmrank --data cache/data/ml100k --users 50

The MovieLens-100K directory is a ``semid data import --format movielens`` of
``../shared/data/movielens_100k`` (never shipped). Expect a 135M model far below
the papers' 7B models; the point is what it scores, measured the same way.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import peak_rss_mb, stamp  # noqa: E402
from bench_tiger_common import replace_section  # noqa: E402

import semid  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "llm.md"

#: Published numbers on each method's own protocol (ANCHORS / the papers, 7B models).
PUBLISHED = {
    "tallrec": "TALLRec (LLaMA-7B), MovieLens-100K AUC: 67.24 / 67.48 / 71.98 with 16 / 64 / 256 samples",
    "llmrank": "LLMRank (ChatGPT, ML-1M, 20 random candidates, recency prompt): NDCG@1/5/10/20 23.83 / 45.69 / 50.31 / 55.45 (%)",
}


def tallrec(args) -> None:
    from semid.gen.tallrec import TallRecConfig, train_tallrec

    dataset = semid.load_dataset(args.ml100k)
    config = TallRecConfig(samples=args.samples, max_epochs=args.max_epochs, eval_every=args.eval_every,
                           patience=args.patience, valid_samples=args.valid_samples, seed=args.seed)
    started = time.perf_counter()
    summary = train_tallrec(dataset, args.run, config, budget_minutes=args.budget_minutes, resume=Path(args.run).exists(),
                            progress=False)
    seconds = time.perf_counter() - started
    body = "\n".join([
        "### TALLRec on MovieLens-100K, SmolLM2-135M-Instruct + LoRA (q, v; r 8)", "", stamp(),
        f"- this invocation: {seconds / 60:.1f} min wall, peak memory {peak_rss_mb():.0f} MiB", "",
        "| samples | epochs | stopped | best epoch | valid AUC (best) | test AUC, tuned | test AUC, untuned model | test prompts (likes) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {args.samples} | {summary['epochs']} | {summary['stopped']} | {summary['best_epoch']} | "
        f"{summary['best_valid_auc']:.4f} | **{summary['test_auc']:.4f}** | {summary['test_auc_base']:.4f} | "
        f"{summary['split']['test']} ({summary['split']['test_likes']}) |",
        "", f"Published: {PUBLISHED['tallrec']}. AUC 0.5 is chance.",
    ])
    replace_section(RESULTS, f"tallrec_{args.samples}", body)
    print(body)


def llmrank(args) -> None:
    from semid.evaluation.candidates import candidate_ndcg
    from semid.gen.llm.backend import LocalCausalLM
    from semid.gen.llmrank import LLMRankSettings, llmrank_evaluate

    dataset = semid.load_dataset(args.data)
    backend = LocalCausalLM.load(None, batch_size=4)
    rows = []
    for scoring in args.scoring.split(","):
        settings = LLMRankSettings(prompt=args.prompt, domain=args.domain, scoring=scoring,
                                   max_new_tokens=args.max_new_tokens, seed=args.seed, on_missing="item_id")
        result = llmrank_evaluate(backend, dataset, settings, users=args.users, progress=True)
        records = result["records"]
        counts = {}
        for seq in semid.evaluation.leave_one_out(dataset).train_sequences:
            for item in seq:
                counts[item] = counts.get(item, 0) + 1
        popular = [sorted(r["candidates"], key=lambda i: -counts.get(i, 0)) for r in records]
        base = candidate_ndcg(popular, [r["candidates"] for r in records], [r["target"] for r in records])
        m = result["metrics"]
        rows.append(f"| {result['method']} ({args.prompt}) | {m['ndcg@1']:.4f} | {m['ndcg@5']:.4f} | {m['ndcg@10']:.4f} | "
                    f"{m['ndcg@20']:.4f} | {m['hr@1_all']:.4f} / {m['hr@1_valid']:.4f} | {m['valid_ratio']:.2f} | "
                    f"{m['popularity_bias']:+.3f} | {m['seconds_per_user']:.1f} |")
        rows.append(f"| most popular, same candidates | {base['ndcg@1']:.4f} | {base['ndcg@5']:.4f} | "
                    f"{base['ndcg@10']:.4f} | {base['ndcg@20']:.4f} | | | | |")
    random_ndcg = {k: float(np.mean([1 / np.log2(r + 1) if r <= k else 0 for r in range(1, 21)])) for k in (1, 5, 10, 20)}
    body = "\n".join([
        f"### LLMRank on {dataset.name}, SmolLM2-135M-Instruct, {args.users} seeded test users, 20 candidates "
        "(19 random unseen + the target, shuffled)", "", stamp(), f"- peak memory {peak_rss_mb():.0f} MiB",
        f"- untitled items shown by their id: {result['protocol']['untitled_items_shown_by_id']}", "",
        "| method | N@1 | N@5 | N@10 | N@20 | HR@1 all / valid | parse rate | popularity bias | s / user |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        f"| random order (expected) | {random_ndcg[1]:.4f} | {random_ndcg[5]:.4f} | {random_ndcg[10]:.4f} | "
        f"{random_ndcg[20]:.4f} | | | | |",
        "", f"Published: {PUBLISHED['llmrank']}.",
    ])
    replace_section(RESULTS, f"llmrank_{dataset.name}", body)
    print(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="method", required=True)
    t = sub.add_parser("tallrec")
    t.add_argument("--ml100k", required=True)
    t.add_argument("--run", default="cache/runs/tallrec-ml100k")
    t.add_argument("--samples", type=int, default=64)
    t.add_argument("--max-epochs", type=int, default=20)
    t.add_argument("--eval-every", type=int, default=2)
    t.add_argument("--patience", type=int, default=3)
    t.add_argument("--valid-samples", type=int, default=200)
    t.add_argument("--budget-minutes", type=float, default=None)
    t.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("llmrank")
    r.add_argument("--data", required=True)
    r.add_argument("--users", type=int, default=50)
    r.add_argument("--prompt", default="recency")
    r.add_argument("--domain", default="movie")
    r.add_argument("--scoring", default="loglik,constrained,generate")
    r.add_argument("--max-new-tokens", type=int, default=160)
    r.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    {"tallrec": tallrec, "llmrank": llmrank}[args.method](args)


if __name__ == "__main__":
    main()
