"""InteRecAgent on a real catalogue: Hit@T and average turns with a simulated shopper, per planner.

For each planner (the deterministic rule planner; the SmolLM2 planner under the plan grammar;
SmolLM2 writing free JSON, falling back to rules when the plan is invalid) the same seeded test
users of the leave-one-out split each want their held-out item; the template simulator reveals
its category, brand, a price bound and title words turn by turn (``--llm-simulator`` adds the
LLM shopper of the paper). Records Hit@T, average turns (a miss counts T + 1, as the paper),
seconds per turn, plan fallbacks and peak memory in ``benchmarks/results/agents.md``::

    .venv/bin/python benchmarks/bench_interec.py --data cache/beauty --users 50 --llm-users 20

Beauty is a ``semid data import --format p5`` of ``../shared/data/amazon_beauty_2014``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import peak_rss_mb, stamp  # noqa: E402
from bench_tiger_common import replace_section  # noqa: E402

import semid  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "agents.md"
PLANNERS = ("rule", "constrained", "llm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--users", type=int, default=50, help="simulated users for the rule planner")
    parser.add_argument("--llm-users", type=int, default=20, help="simulated users for the LLM planners")
    parser.add_argument("--planners", default=",".join(PLANNERS), help=f"comma-separated, from {', '.join(PLANNERS)}")
    parser.add_argument("--llm-simulator", action="store_true", help="also run the LLM shopper with the rule planner")
    parser.add_argument("--ranker", default=None, metavar="RUN",
                        help="a semid run (SASRec, TIGER, ...) or 'popularity': adds the rule planner ranking by it "
                             "over the shopper's history (preference schema, history shared with the agent)")
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--section", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from semid.evaluation.split import leave_one_out, sample_cases
    from semid.gen.agents import Agent, ConstrainedPlanner, LLMPlanner, RulePlanner, build_items_db, simulate

    dataset = semid.load_dataset(args.data)
    db = Path(tempfile.mkdtemp(prefix="semid-interec-")) / "items.db"
    started = time.perf_counter()
    build_items_db(dataset, db)
    db_seconds = time.perf_counter() - started
    test = leave_one_out(dataset).test
    backend = None
    planners = args.planners.split(",")
    for name in planners:
        if name not in PLANNERS:
            parser.error(f"unknown planner {name!r}; choose from {', '.join(PLANNERS)}")
    if set(planners) - {"rule"} or args.llm_simulator:
        from semid.gen.llm.backend import LocalCausalLM

        backend = LocalCausalLM.load(None)

    runs = [(name, "template", "popularity") for name in planners]
    if args.llm_simulator:
        runs.append(("rule", "llm", "popularity"))
    recommender = None
    if args.ranker:
        from semid.cli.eval_cmds import load_recommender

        recommender = load_recommender(Path(args.ranker), dataset=dataset)
        runs.insert(1, ("rule", "template", "preference"))
    rows = []
    for name, simulator, ranking in runs:
        n_users = args.users if name == "rule" and simulator == "template" else args.llm_users
        cases = sample_cases(test, n_users, args.seed)
        planner = {"rule": lambda: RulePlanner(ranking), "constrained": lambda: ConstrainedPlanner(backend),
                   "llm": lambda: LLMPlanner(backend)}[name]()
        agents = []
        by_preference = ranking == "preference"

        def make_agent():
            agents.append(Agent(dataset, db, planner, recommender=recommender if by_preference else None))
            return agents[-1]

        t0 = time.perf_counter()
        result = simulate(make_agent, dataset, cases, turns=args.turns,
                          simulator=backend if simulator == "llm" else None, share_history=by_preference)
        seconds = time.perf_counter() - t0
        turns = sum(len(a.dialogue) for a in agents)
        failures = sum(a.plan_failures for a in agents)
        leaks = result.get("title_leaks", "-")
        ranked_by = f"{Path(args.ranker).name} over the history" if by_preference else "popularity"
        rows.append(f"| {name} | {ranked_by} | {simulator} | {result['users']} | {result['hit@1']:.3f} | "
                    f"{result[f'hit@{args.turns}']:.3f} | "
                    f"{result['average_turns']:.2f} | {turns} | {seconds / max(turns, 1):.2f} | {failures} | {leaks} |")
        logging.info("%s", rows[-1])
    body = "\n".join([
        f"### InteRecAgent on {dataset.name}: simulated shoppers, Hit@{args.turns}", "",
        stamp(),
        f"- items database built in {db_seconds:.1f} s; LLM: "
        f"{'SmolLM2-135M-Instruct (local)' if backend is not None else 'none (rule planner only)'}",
        f"- peak memory {peak_rss_mb():.0f} MiB", "",
        f"| planner | ranking (no seed) | simulator | users | Hit@1 | Hit@{args.turns} | average turns | turns run | "
        "s / turn | plan fallbacks | title leaks |",
        "|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""])
    replace_section(RESULTS, args.section or f"interec_{dataset.name}", body)
    print(body)


if __name__ == "__main__":
    main()
