"""Agent4Rec with the real SmolLM2-135M-Instruct: do simulated users order recommenders as offline accuracy does?

For each recommender (a seeded random ranking, the most-popular list, and a SASRec run trained
here unless one is given) records its offline test R@10 / N@10 (leave-one-out, full ranking,
every user) and the Agent4Rec metrics of the same simulated users (view rate, mean rating,
likes per page, exit page, satisfaction 1-10), then whether the two orders agree (Spearman
over the recommenders). Results in ``benchmarks/results/agents.md``::

    .venv/bin/python benchmarks/bench_agents.py --data cache/data/ml100k --work cache/agents --agents 20

The MovieLens-100K directory is a ``semid data import --format movielens`` of
``../shared/data/movielens_100k`` (never shipped).
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

RESULTS = Path(__file__).resolve().parent / "results" / "agents.md"


def _spearman(a, b) -> float:
    """Spearman's rho with tied values at their average rank; ``nan`` when either side is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if np.std(ra) == 0 or np.std(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a dataset with ratings (MovieLens-100K)")
    parser.add_argument("--work", required=True, help="folder for the SASRec run")
    parser.add_argument("--sasrec-run", default=None, help="an existing SASRec run (default: train one in --work)")
    parser.add_argument("--sasrec-minutes", type=float, default=5.0)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibrate", choices=("none", "items", "all"), default="none",
                        help="contextually calibrated choices (semid agents --calibrate); its own results section")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from semid.cli.eval_cmds import load_recommender
    from semid.evaluation import evaluate
    from semid.gen.agents import simulate_agents
    from semid.gen.cf import TrainOptions, train_cf
    from semid.gen.llm.backend import LocalCausalLM

    dataset = semid.load_dataset(args.data)
    sasrec = Path(args.sasrec_run) if args.sasrec_run else Path(args.work) / "sasrec"
    if not args.sasrec_run:
        train_cf(sasrec, dataset, model_name="sasrec", seed=args.seed, resume=sasrec.exists(), progress=False,
                 options=TrainOptions(max_epochs=200, patience=10, budget_minutes=args.sasrec_minutes))
    backend = LocalCausalLM.load(None, batch_size=8)
    rows, offline, satisfied = [], [], []
    for name, run in (("random", Path("random")), ("most popular", Path("popularity")), ("SASRec", sasrec)):
        recommender = load_recommender(run, dataset=dataset)
        test = evaluate(recommender, dataset, ks=(10,), progress=False, beyond_accuracy=False)["metrics"]
        started = time.perf_counter()
        sim = simulate_agents(backend, dataset, load_recommender(run, dataset=dataset), agents=args.agents,
                              pages=args.pages, seed=args.seed, calibrate=args.calibrate,
                              progress=False)
        m = sim["metrics"]
        offline.append(test["recall@10"])
        satisfied.append(m["mean_satisfaction"])
        rows.append(f"| {name} | {test['recall@10']:.4f} | {test['ndcg@10']:.4f} | {m['view_rate']:.3f} | "
                    f"{m['mean_rating']:.2f} | {m['likes_per_page']:.2f} | {m['mean_exit_page']:.2f} | "
                    f"{m['mean_satisfaction']:.2f} | {time.perf_counter() - started:.0f} |")
    body = "\n".join([
        f"### Agent4Rec on {dataset.name}, SmolLM2-135M-Instruct, {args.agents} seeded agents, {args.pages} pages "
        f"of 4 items{'' if args.calibrate == 'none' else f', {args.calibrate} choices calibrated'}", "", stamp(),
        f"- peak memory {peak_rss_mb():.0f} MiB", "",
        "| recommender | offline test R@10 | offline test N@10 | view rate | mean rating | likes / page | "
        "exit page | satisfaction (1-10) | simulation s |", "|---|---|---|---|---|---|---|---|---|", *rows, "",
        f"Spearman of satisfaction against offline R@10 over the three recommenders: "
        f"{_spearman(satisfied, offline):+.2f} (+1: the agents order them as offline accuracy does; nan: the "
        "agents gave every recommender the same satisfaction).",
        "Published (Agent4Rec, gpt-3.5, ML-1M): the agents' satisfaction and view rate order random < "
        "popularity < MF/LightGCN as offline accuracy does.",
    ])
    section = f"agents_{dataset.name}" + ("" if args.calibrate == "none" else f"_calibrated_{args.calibrate}")
    replace_section(RESULTS, section, body)
    print(body)


if __name__ == "__main__":
    main()
