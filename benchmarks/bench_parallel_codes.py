"""What the number of codes does to the parallel generator: pq with 4, 16, 32 and 64 codes per item.

For each ``m`` builds (or reuses) a ``pq`` index with ``m`` sub-spaces of 256 codes (OPQ,
a disambiguation code for every item) on the same item embeddings, trains the parallel
generator with the same settings and the same wall-clock budget, and tests the best
checkpoint on every test user (full ranking, exact scoring). One table in
``benchmarks/results/parallel.md`` (section ``bench_parallel_codes``)::

    .venv/bin/python benchmarks/bench_parallel_codes.py --data cache/data/beauty \\
        --embeddings cache/emb/minilm.npz --work cache/codes --m 4,16,32,64 --budget-minutes 20 \\
        --set d_model=128 --set d_ff=512

Runs resume: rerunning continues each run with a fresh budget (an index is built once).
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

RESULTS = Path(__file__).resolve().parent / "results" / "parallel.md"


def _index(data, embeddings: Path, m: int, out: Path):
    if (out / "tokenizer.json").exists():
        return semid.load(out)
    import numpy as np

    loaded = np.load(embeddings, allow_pickle=False)
    position = {item: i for i, item in enumerate(loaded["item_ids"].tolist())}
    matrix = loaded["embeddings"][[position[i] for i in data.items.item_ids]]
    index = semid.make("pq", m=m, codebook_size=256, opq=True, disambiguation="always").fit(
        data.items, embeddings=matrix)
    index.save(out)
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--embeddings", required=True, help="item embeddings (.npz with item_ids, embeddings)")
    parser.add_argument("--work", required=True, help="folder for the indexes and runs")
    parser.add_argument("--m", default="4,16,32,64", help="codes per item, comma separated")
    parser.add_argument("--budget-minutes", type=float, default=20.0, help="training budget per run")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--results", default=str(RESULTS), help="results file (section bench_parallel_codes)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from semid.evaluation import evaluate
    from semid.gen.parallel import ParallelConfig, load_recommender, train_parallel
    from semid.params import parse_assignments

    data = semid.load_dataset(args.data)
    work = Path(args.work)
    rows = []
    for m in [int(x) for x in args.m.split(",")]:
        index = _index(data, Path(args.embeddings), m, work / f"pq{m}")
        run = work / f"rpg-pq{m}"
        config = ParallelConfig().with_assignments(parse_assignments(args.settings))
        started = time.perf_counter()
        summary = train_parallel(data, index, index_path=str((work / f"pq{m}").resolve()), out=run, config=config,
                                 budget_minutes=args.budget_minutes, resume=run.exists(), progress=False)
        wall = time.perf_counter() - started
        test = evaluate(load_recommender(run), data, ks=(5, 10, 20), progress=False, beyond_accuracy=False)
        t = test["metrics"]
        rows.append(f"| {m} (+1) | {summary['epochs']} | {summary['train_seconds'] / 60:.1f} | "
                    f"{summary['best_valid_ndcg@10']} | {t['recall@5']:.4f} | {t['recall@10']:.4f} | "
                    f"{t['ndcg@10']:.4f} | {t['recall@20']:.4f} | {wall / 60:.1f} |")
        logging.info("m=%d: %s", m, json.dumps(t))
    body = "\n".join([
        "### Number of codes per item (pq m x 256 + OPQ, one disambiguation code), same settings and budget cap "
        "each", "", stamp(),
        f"- settings `{json.dumps(parse_assignments(args.settings))}`, budget {args.budget_minutes} min per run; "
        f"peak memory {peak_rss_mb():.0f} MiB", "",
        "| codes | epochs | training min | best valid N@10 | test R@5 | test R@10 | test N@10 | test R@20 | wall min |",
        "|---|---|---|---|---|---|---|---|---|", *rows,
    ])
    replace_section(args.results, "bench_parallel_codes", body)
    print(body)


if __name__ == "__main__":
    main()
