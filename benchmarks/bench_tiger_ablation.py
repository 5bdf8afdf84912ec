"""Multi-seed ablation of TIGER recipe settings (which defaults win, measured).

Each arm is a name and ``--set``-style overrides of :class:`TigerConfig`; every
(arm, seed) pair trains one run for ``--epochs`` epochs in ``--work`` (finished
runs are reused, so the script can be rerun to add arms or seeds) and is
validated once at the end on every validation user (full ranking). The table
(mean +- sd over seeds) goes into a marked section of
``benchmarks/results/tiger.md`` with hardware, command and load.

    .venv/bin/python benchmarks/bench_tiger_ablation.py --data data/beauty-top500 --index idx/sub-rqk \\
        --work runs/ablation --epochs 3 --seeds 0,1,2 \\
        --arm user2000:user_buckets=2000 --arm no_user:user_buckets=0
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bench_tiger_common import machine_facts, replace_section  # noqa: E402

import semid  # noqa: E402


def parse_arm(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition(":")
    settings = dict(kv.split("=", 1) for kv in rest.split(",") if kv)
    return name, settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--index", required=True)
    parser.add_argument("--work", required=True, help="directory of the runs (reused when rerun)")
    parser.add_argument("--arm", action="append", required=True, metavar="NAME:KEY=VALUE,...")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--section", default="bench_tiger_ablation")
    parser.add_argument("--results", default=str(ROOT / "results" / "tiger.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    from semid.gen.runs import open_run
    from semid.gen.tiger import TigerConfig, train_tiger

    dataset = semid.load_dataset(args.data)
    tokenizer = semid.load(args.index)
    seeds = [int(s) for s in args.seeds.split(",")]
    arms = [parse_arm(a) for a in args.arm]
    results: dict[str, list[dict]] = {}
    for name, settings in arms:
        for seed in seeds:
            out = Path(args.work) / f"{name}-seed{seed}"
            config = TigerConfig().with_assignments(
                {**settings, "seed": str(seed), "max_epochs": str(args.epochs), "eval_every": str(args.epochs),
                 "eval_users": "0", "patience": str(args.epochs)}
            )
            started = time.time()
            if not (out / "done.json").exists():
                summary = train_tiger(dataset, tokenizer, index_path=args.index, out=str(out), config=config,
                                      resume=out.exists(), progress=False)
                (out / "done.json").write_text(json.dumps({**summary, "wall": time.time() - started}))
            log = open_run(out).read_log()
            valid = [r for r in log if r["event"] == "valid"][-1]
            losses = [r["loss"] for r in log if r["event"] == "epoch"]
            results.setdefault(name, []).append({"valid": valid, "loss": losses[-1],
                                                 **json.loads((out / "done.json").read_text())})

    def mean_sd(values: list[float], digits: int = 4) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"

    facts = machine_facts()
    n_users = results[arms[0][0]][0]["valid"]["users"]
    lines = [
        f"Data `{Path(args.data).name}`, index `{Path(args.index).name}`, {args.epochs} epochs per run, "
        f"seeds {args.seeds}, validation on all {n_users} validation users (full ranking) after the last epoch; "
        f"otherwise the default `TigerConfig` (paper-size model).",
        "",
        f"- date {facts['date']}, cpu {facts['cpu']}, torch {facts['torch']}, load {facts['load']}",
        f"- command: `{facts['command']}`",
        "",
        "| arm | settings | valid R@10 | valid N@10 | N@10 per seed | distinct@10 | last-epoch train loss | valid NLL per position |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, settings in arms:
        rows = results[name]
        nll = [statistics.mean(p) for p in zip(*(r["valid"]["position_nll"] for r in rows))]
        lines.append(
            f"| {name} | {', '.join(f'{k}={v}' for k, v in settings.items()) or 'defaults'} | "
            f"{mean_sd([r['valid']['recall@10'] for r in rows])} | {mean_sd([r['valid']['ndcg@10'] for r in rows])} | "
            f"{' / '.join(format(r['valid']['ndcg@10'], '.4f') for r in rows)} | "
            f"{statistics.mean(r['valid']['distinct@10'] for r in rows):.0f} | "
            f"{mean_sd([r['loss'] for r in rows], 3)} | {' / '.join(f'{x:.2f}' for x in nll)} |"
        )
    replace_section(args.results, args.section, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
