"""Every generator of semid against SASRec and popularity on a CPU-sized Beauty subset.

Full Amazon Beauty needs hundreds of TIGER epochs and days of LLM tuning on a 2-core
CPU. This script derives a subset where each model can be trained far enough to say
something (`semid data subset`: the 500 most frequent Beauty items, 5-core), builds
one index for both generators, trains SASRec, TIGER and LC-Rec (SmolLM2-135M + LoRA)
with the `semid` commands, evaluates all of them and the most-popular baseline with
`semid evaluate` on the same seeded test users, and writes a section of
``benchmarks/results/subset.md`` with hardware, commands and wall times.

Every stage is skipped when its output exists, and the training stages resume, so a
killed run continues where it stopped::

    nohup .venv/bin/python benchmarks/bench_subset.py > cache/logs/subset.log 2>&1 &
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

from _data import CACHE_ROOT, ensure_beauty  # noqa: E402
from _env import stamp  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SEMID = str(Path(sys.executable).with_name("semid"))


def run(args: list[str], log: Path, *, threads: int) -> tuple[str, float]:
    """Run ``semid ARGS`` with ``threads`` BLAS/torch threads; return stdout and wall seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    with open(log, "a", encoding="utf-8") as err:
        err.write(f"\n$ semid {shlex.join(args)}\n")
        err.flush()
        done = subprocess.run([SEMID, *args], env=env, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"semid {shlex.join(args)} failed with exit code {done.returncode}; see {log}")
    return done.stdout, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=str(CACHE_ROOT / "subset"), help="Where the subset, index and runs go.")
    parser.add_argument("--top-items", type=int, default=500)
    parser.add_argument("--index-set", default="n_levels=3,codebook_size=16",
                        help="rqkmeans parameters, comma separated.")
    parser.add_argument("--tiger-minutes", type=float, default=20.0)
    parser.add_argument("--lcrec-minutes", type=float, default=42.0)
    # "text" keeps the model's language (ANCHORS pitfall 9): without it, a run of this script
    # answered "What is the capital of France?" with an item code (results/subset.md).
    parser.add_argument("--lcrec-tasks", default="seqrec,item2index,index2item,text")
    parser.add_argument("--lcrec-max-per-task", type=int, default=3000)
    parser.add_argument("--users", type=int, default=500, help="Seeded sample of test users (all models).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip", default="", help="Comma-separated models not to train/evaluate.")
    parser.add_argument("--no-train", default="", help="Comma-separated models to evaluate as they are (no training).")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "subset.md"))
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    skip = {s for s in args.skip.split(",") if s}
    frozen = {s for s in args.no_train.split(",") if s}
    timings: dict[str, float] = {}
    commands: list[str] = []

    def semid(name: str, cmd: list[str], *, threads: int = args.threads) -> str:
        commands.append("semid " + shlex.join(cmd))
        out, seconds = run(cmd, log, threads=threads)
        timings[name] = timings.get(name, 0.0) + seconds
        return out

    data = work / f"beauty-top{args.top_items}"
    if not data.exists():
        semid("subset", ["data", "subset", str(ensure_beauty()), str(data), "--top-items", str(args.top_items),
                         "--name", f"beauty-top{args.top_items}"])
    emb = work / "minilm.npz"
    if not emb.exists():
        semid("embed", ["embed", "--data", str(data), "--out", str(emb)])
    index = work / "index-rqkmeans"
    if not index.exists():
        sets = [x for kv in args.index_set.split(",") for x in ("--set", kv)]
        semid("index", ["build-index", "--scheme", "rqkmeans", "--data", str(data), "--embeddings", str(emb),
                        "--out", str(index), "--seed", "0", *sets])

    runs: dict[str, str] = {"popularity": "popularity"}
    if "sasrec" not in skip:
        sasrec = work / "sasrec"
        if not (sasrec / "result.json").exists() and "sasrec" not in frozen:
            semid("train sasrec", ["cf", "train", "sasrec", "--data", str(data), "--out", str(sasrec),
                                   *(["--resume"] if sasrec.exists() else [])])
        runs["sasrec"] = str(sasrec)
    if "tiger" not in skip:
        tiger = work / "tiger"
        if "tiger" not in frozen:
            semid("train tiger", ["train", "tiger", "--data", str(data), "--index", str(index), "--out", str(tiger),
                                  "--budget-minutes", str(args.tiger_minutes), "--max-epochs", "100", "--quiet",
                                  *(["--resume"] if tiger.exists() else [])])
        runs["tiger"] = str(tiger)
    if "lcrec" not in skip:
        lcrec = work / "lcrec"
        if "lcrec" not in frozen:
            semid("train lcrec", ["train", "lcrec", "--data", str(data), "--index", str(index), "--out", str(lcrec),
                                  "--tasks", args.lcrec_tasks, "--max-per-task", str(args.lcrec_max_per_task),
                                  "--budget-minutes", str(args.lcrec_minutes), "--quiet",
                                  *(["--resume"] if lcrec.exists() else [])])
        runs["lcrec"] = str(lcrec)

    results: dict[str, dict] = {}
    for name, run_dir in runs.items():
        cached = work / f"eval-{name}.json"
        if cached.exists() and cached.stat().st_mtime > _newest_mtime(run_dir):
            results[name] = json.loads(cached.read_text())  # the run has not changed since
            continue
        out = semid(f"evaluate {name}", ["evaluate", run_dir, "--data", str(data), "--users", str(args.users),
                                         "--k", "5,10,20"])
        cached.write_text(out)
        results[name] = json.loads(out)
    answers = None
    if "lcrec" in runs:
        answers = json.loads(semid("ask lcrec", ["ask", runs["lcrec"], *QUESTIONS, "--base"]))
    write_section(Path(args.results), args, data, results, timings, commands, work, answers)


#: Plain-text questions asked before and after tuning (language kept? ANCHORS pitfall 9).
QUESTIONS = (
    "What is the capital of France?",
    "Give a tip for keeping skin healthy in winter.",
    "Name three fruits that are red.",
)


def _newest_mtime(run_dir: str) -> float:
    path = Path(run_dir)
    if not path.exists():  # "popularity"
        return 0.0
    return max((p.stat().st_mtime for p in path.rglob("*") if p.is_file()), default=0.0)


def _train_summary(work: Path, name: str) -> str:
    """Epochs / steps / stop reason of a run, from its own log files."""
    if name == "sasrec":
        path = work / "sasrec" / "result.json"
        if path.exists():
            r = json.loads(path.read_text())
            return (f"{r.get('epochs')} epochs ({r.get('train_seconds', 0) / 60:.0f} min of training), "
                    f"best epoch {r.get('best_epoch')}, stop: {r.get('stopped')}")
        return ""
    log = work / name / "train_log.jsonl"
    if not log.exists():
        return ""
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    stops = [e for e in events if e.get("event") == "stop"]
    if name == "tiger":
        # The checkpoints' state is authoritative (a killed invocation logs no "stop").
        states = {}
        for which in ("last", "best"):
            path = work / "tiger" / "checkpoints" / which / "state.json"
            states[which] = json.loads(path.read_text()) if path.exists() else {}
        last, best = states["last"], states["best"]
        return (f"{last.get('epoch', '?')} epochs ({last.get('train_seconds', 0) / 60:.0f} min of training), "
                f"best epoch {best.get('best_epoch', '?')} (validation N@10 {best.get('best_ndcg@10', 0):.3f}), "
                f"stop: {stops[-1].get('reason') if stops else '?'}")
    if stops:
        s = stops[-1]
        return (f"{s.get('steps')} of {s.get('total_steps')} steps ({s.get('examples')} examples, "
                f"{s.get('epochs_completed', 0):.2f} epochs, {s.get('train_seconds', 0) / 60:.0f} min), "
                f"loss EMA {s.get('final_loss_ema', 0):.3f}")
    return ""


def write_section(
    path: Path, args, data: Path, results: dict, timings: dict, commands: list[str], work: Path, answers: dict | None
) -> None:
    stats = json.loads((data / "dataset.json").read_text())["counts"]
    lines = [
        f"\n## Beauty top-{args.top_items} subset: {stats['users']} users, {stats['items']} items, "
        f"{stats['interactions']} interactions\n",
        stamp().rstrip(),
        f"- torch threads: {args.threads}; test users: seeded sample of {args.users} (seed 0), full ranking "
        f"over all {stats['items']} items, history = last 20 items, no seen-item exclusion, 20 beams",
        f"- index: rqkmeans ({args.index_set}) on MiniLM embeddings of title, price, brand, categories",
        "",
        "| model | R@5 | N@5 | R@10 | N@10 | R@20 | N@20 | invalid | coverage@10 | training | evaluation s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {"popularity": "most popular", "sasrec": "SASRec (CE)", "tiger": "TIGER", "lcrec": "LC-Rec (SmolLM2-135M + LoRA)"}
    for name, r in results.items():
        m = r["metrics"]
        lines.append(
            f"| {labels.get(name, name)} | {m['recall@5']:.4f} | {m['ndcg@5']:.4f} | {m['recall@10']:.4f} | "
            f"{m['ndcg@10']:.4f} | {m['recall@20']:.4f} | {m['ndcg@20']:.4f} | {m['invalid_rate']:.4f} | "
            f"{m.get('coverage@10', float('nan')):.3f} | {_train_summary(work, name)} | "
            f"{r.get('seconds', 0):.0f} |"
        )
    if answers:
        lines += ["", "LC-Rec plain-text answers (greedy, unconstrained), base model -> tuned model:", ""]
        for question, pair in answers.items():
            lines += [f"- *{question}*  ", f"  base: {pair.get('base')!r}  ", f"  tuned: {pair.get('tuned')!r}"]
    lines += ["", "Commands (in order):", "", "```", *commands, "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(
            "# Generators on a CPU-sized Beauty subset\n\n"
            "Written by `benchmarks/bench_subset.py`: every model is trained with the `semid` commands\n"
            "listed under its section and evaluated with `semid evaluate` on the same test users.\n"
        )
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


if __name__ == "__main__":
    main()
