"""Why does TIGER lose more than SASRec from the validation to the test split?

On the Beauty top-500 subset (``bench_subset.py``) TIGER's R@10 fell from 0.118 on
the validation split to 0.075 on the test split, SASRec's only from 0.396 to 0.331.
This script evaluates already-trained runs and the most-popular baseline with
``semid evaluate`` on both splits for the same seeded users (leave-one-out gives
every user one validation and one test case, in the same order) and reports, per
model, the relative drop next to how popular its recommended lists are
(``popularity_percentile@10``: 1.0 = only the most popular items).

If the test targets are simply less predictable from training popularity than the
validation targets (they are later in time), the most-popular baseline drops most
and a model drops in proportion to how much it leans on popularity.

    .venv/bin/python benchmarks/bench_split_gap.py --runs sasrec=cache/subset/sasrec \\
        --runs tiger=cache/subset/tiger --users 1000
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import CACHE_ROOT  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tiger_common import machine_facts, replace_section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SEMID = str(Path(sys.executable).with_name("semid"))


def evaluate(run: str, data: str, split: str, users: int, threads: int) -> tuple[dict, list[str], float]:
    """``semid evaluate`` of ``run`` on ``split``: its metrics, the command, wall seconds."""
    cmd = ["evaluate", run, "--data", data, "--split", split, "--k", "10"]
    if users:
        cmd += ["--users", str(users)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run([SEMID, *cmd], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"semid {shlex.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)["metrics"], cmd, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(CACHE_ROOT / "subset/beauty-top500"))
    parser.add_argument("--runs", action="append", default=[], metavar="NAME=RUN_DIR",
                        help="A trained run to evaluate (repeatable); popularity is always included.")
    parser.add_argument("--users", type=int, default=1000, help="Seeded sample of users, 0 = all.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "subset.md"))
    parser.add_argument("--section", default="bench_split_gap")
    args = parser.parse_args()

    facts = machine_facts()
    runs = [("most popular", "popularity")] + [tuple(r.split("=", 1)) for r in args.runs]
    rows, commands = [], []
    for name, run in runs:
        scores = {}
        for split in ("valid", "test"):
            metrics, cmd, seconds = evaluate(run, args.data, split, args.users, args.threads)
            commands.append(f"semid {shlex.join(cmd)}  # {seconds:.0f} s")
            scores[split] = metrics
            print(name, split, {k: round(v, 4) for k, v in metrics.items() if k.endswith("@10")}, flush=True)
        valid, test = scores["valid"]["recall@10"], scores["test"]["recall@10"]
        rows.append(
            f"| {name} | {valid:.4f} | {test:.4f} | {(valid - test) / valid:.0%} | "
            f"{scores['valid']['ndcg@10']:.4f} | {scores['test']['ndcg@10']:.4f} | "
            f"{scores['test']['popularity_percentile@10']:.3f} |"
        )
    facts["load (end)"] = machine_facts()["load"]
    lines = ["### Validation vs test split, same users (bench_split_gap.py)", ""]
    lines += [f"- {k}: `{v}`" if k == "command" else f"- {k}: {v}" for k, v in facts.items()]
    lines += ["", f"Users: {'all' if not args.users else f'seeded sample of {args.users}'}; "
              "popularity percentile of the test lists (1.0 = only the most popular items).", "",
              "| model | valid R@10 | test R@10 | relative drop | valid N@10 | test N@10 | popularity percentile@10 |",
              "|---|---|---|---|---|---|---|", *rows, "", "Commands:", "", "```",
              *commands, "```"]
    text = "\n".join(lines) + "\n"
    print(text)
    replace_section(args.results, args.section, text)


if __name__ == "__main__":
    main()
