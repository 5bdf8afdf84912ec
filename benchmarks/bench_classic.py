"""Build every classic scheme on full Amazon Beauty 2014 and record time, memory, shape.

Each scheme runs in a fresh subprocess so its peak memory is its own. Writes
``benchmarks/results/classic.md``.

    .venv/bin/python benchmarks/bench_classic.py [--schemes collaborative,category]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _env import peak_rss_mb, stamp  # noqa: E402

#: (label, scheme, params). Settings follow "How to Index Item IDs" where it gives them.
CONFIGS = [
    ("RID", "random", {}),
    ("TID", "title", {"on_missing": "item_id"}),
    ("IID", "independent", {}),
    ("SID (original order)", "sequential", {"order": "original"}),
    ("SID (short2long)", "sequential", {"order": "short2long"}),
    ("CID (N=20, k=500)", "collaborative", {"n_clusters": 20, "max_group_size": 500}),
    ("CID (N=10, k=100)", "collaborative", {"n_clusters": 10, "max_group_size": 100}),
    ("SemID", "category", {}),
    ("CID+IID", "collaborative+independent", {"prefix": {"n_clusters": 20, "max_group_size": 500}}),
    ("SemID+IID", "category+independent", {}),
    ("SemID+CID", "category+collaborative", {"suffix": {"n_clusters": 20, "max_group_size": 500}}),
]


def run_one(scheme: str, params: dict) -> dict:
    import semid
    from semid.build import build_index
    from semid.summary import index_summary
    from _data import ensure_beauty

    dataset = semid.load_dataset(ensure_beauty())
    base_rss = peak_rss_mb()
    started = time.perf_counter()
    tokenizer = build_index(scheme, dataset, params=params)
    seconds = time.perf_counter() - started
    summary = index_summary(tokenizer)
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_fit_mb": round(base_rss, 1),
        "code_length": summary["code_length"],
        "collisions_resolved": summary["collisions"]["resolved"],
        "n_tokens": summary["n_tokens"],
        "level_sizes": [level["size"] for level in summary["levels"]],
        "fit_info": summary["fit_info"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemes", default="", help="comma-separated scheme names to run (default: all)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, json.loads(args.params))))
        return
    wanted = set(filter(None, args.schemes.split(",")))
    rows = []
    for label, scheme, params in CONFIGS:
        if wanted and scheme not in wanted:
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--one", scheme, "--params", json.dumps(params)],
            capture_output=True, text=True, check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append((label, scheme, params, result))
        print(f"{label:24s} {result['seconds']:7.2f} s  {result['peak_rss_mb']:7.0f} MiB  "
              f"len {result['code_length']['min']}-{result['code_length']['max']}  "
              f"collisions {result['collisions_resolved']}", flush=True)
    lines = [
        "# Classic schemes on Amazon Beauty 2014 (12,101 items, 22,363 users)",
        "",
        "Index built from each user's training sequence (leave-one-out: validation and test items",
        "never enter co-occurrence graphs or orderings). Fit time excludes loading the dataset;",
        "peak RSS is the whole process (Python + dataset + fit), each scheme in its own process.",
        "'Collisions resolved' counts items whose grouping code was shared and had to be",
        "disambiguated by the scheme's policy (within-group / within-leaf index, '#k' token).",
        "",
        stamp(),
        "| scheme | settings | fit (s) | peak RSS (MiB) | code length (min-max) | tokens | collisions resolved |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, scheme, params, r in rows:
        settings = json.dumps(params, sort_keys=True) if params else "defaults"
        lines.append(
            f"| {label} (`{scheme}`) | `{settings}` | {r['seconds']:.2f} | {r['peak_rss_mb']:.0f} | "
            f"{r['code_length']['min']}-{r['code_length']['max']} | {r['n_tokens']} | {r['collisions_resolved']} |"
        )
    (HERE / "results" / "classic.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
