"""LC-Rec on Amazon Beauty (2014, 5-core) on this CPU: SmolLM2-135M-Instruct + LoRA.

Trains within a time budget on a seeded sample of alignment examples (the
``--max-per-task`` cap), evaluates with the TIGER protocol (leave-one-out, test
split, full ranking over all 12,101 items, histories of at most 20 items,
constrained beam search with 20 beams) on a seeded sample of ``--users`` test
users, asks the tuned model plain-text questions (language ability check,
ANCHORS pitfall 9) and appends the results to ``benchmarks/results/lcrec.md``.

    nohup .venv/bin/python benchmarks/bench_lcrec.py --budget-minutes 20 --users 100 \\
        > cache/logs/bench_lcrec.log 2>&1 &

For the paper-scale recipe on a GPU see ``benchmarks/bench_lcrec_gpu.sh``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import CACHE_ROOT  # noqa: E402
from _env import portable_command  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTIONS = (
    "What is the capital of France?",
    "Give a tip for keeping skin healthy in winter.",
    "Name three fruits that are red.",
)


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[:3].__str__() if Path("/proc/loadavg").exists() else "n/a"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores visible)"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(CACHE_ROOT / "data/beauty"))
    parser.add_argument("--index", default=None, help="Index directory (default: build an 'independent' index).")
    parser.add_argument("--work", default=str(CACHE_ROOT / "lcrec"), help="Where the index and the run go.")
    parser.add_argument("--budget-minutes", type=float, default=20.0)
    parser.add_argument("--max-per-task", type=int, default=150)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--beams", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default=str(Path(__file__).parent / "results" / "lcrec.md"))
    parser.add_argument("--resume", action="store_true", help="Continue an interrupted run in --work.")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import semid
    from semid.evaluation import evaluate
    from semid.gen.lcrec import LCRecConfig, load_lcrec_run, train_lcrec
    from semid.gen.lcrec.encoding import PromptFormatter
    from semid.gen.lcrec.recommender import plain_answer
    from semid.gen.lcrec.templates import load_prompts
    from semid.gen.llm.base_model import load_causal_lm

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    dataset = semid.load_dataset(args.data)
    index_path = Path(args.index) if args.index else work / "index_independent"
    if not index_path.exists():
        semid.make("independent", seed=args.seed).fit(dataset.items).save(index_path)
    index = semid.load(index_path)
    run_path = work / "run_smollm2_lora"
    started_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = _load()

    # Language check of the untuned base model, for comparison.
    base, base_tok = load_causal_lm(None)
    formatter = PromptFormatter(base_tok, load_prompts())
    before = {q: plain_answer(base, base_tok, formatter, q) for q in QUESTIONS}
    del base

    config = LCRecConfig(
        max_per_task=args.max_per_task, budget_minutes=args.budget_minutes, batch_size=8, learning_rate=1e-3,
        lora_r=8, epochs=1, num_beams=args.beams, eval_batch_size=4, seed=args.seed, checkpoint_minutes=5.0,
    )
    t0 = time.perf_counter()
    outcome = train_lcrec(dataset, index_path, run_path, config, resume=args.resume, overwrite=not args.resume)
    train_wall = time.perf_counter() - t0
    load_after_train = _load()

    recommender = load_lcrec_run(run_path)
    t0 = time.perf_counter()
    result = evaluate(recommender, dataset, split="test", ks=(5, 10, 20), n_users=args.users, seed=args.seed,
                      batch_size=16)
    eval_wall = time.perf_counter() - t0
    after = {q: recommender.answer(q) for q in QUESTIONS}
    reference = popularity_reference(dataset, args.users, args.seed)
    load_end = _load()

    record = {
        "date": started_at, "cpu": _cpu(), "torch_threads": args.threads,
        "load_avg": {"start": load_before, "after_train": load_after_train, "end": load_end},
        "command": portable_command(),
        "index": {"path": str(index_path), "scheme": index.scheme, "n_items": len(index.item_ids)},
        "train": outcome, "train_wall_seconds": round(train_wall, 1),
        "eval": result, "eval_wall_seconds": round(eval_wall, 1),
        "eval_seconds_per_user": round(eval_wall / max(result["n_users"], 1), 2),
        "answers_before": before, "answers_after": after, "most_popular_reference": reference,
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip(),
    }
    (work / "bench_lcrec_last.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    _append_markdown(Path(args.results), record, config)
    logging.info("results appended to %s", args.results)


def popularity_reference(dataset, users: int, seed: int) -> dict:
    """Most-popular metrics on the same sampled users (context for a tiny CPU budget)."""
    from semid.evaluation import MostPopular, evaluate

    return evaluate(MostPopular(dataset), dataset, split="test", ks=(5, 10, 20), n_users=users, seed=seed,
                    progress=False)["metrics"]


def _append_markdown(path: Path, r: dict, config) -> None:
    m = r["eval"]["metrics"]
    t = r["train"]
    lines = [
        f"\n## Run of {r['date']} (SmolLM2-135M-Instruct + LoRA r={config.lora_r}, CPU)\n",
        f"- Command: `{r['command']}`",
        f"- Hardware: {r['cpu']}, torch threads {r['torch_threads']}, shared with other jobs; "
        f"load average (1/5/15 min) at start {r['load_avg']['start']}, after training "
        f"{r['load_avg']['after_train']}, at the end {r['load_avg']['end']}",
        f"- Index: {r['index']['scheme']} ({r['index']['n_items']} items), `{r['index']['path']}`",
        f"- Training: tasks {', '.join(config.tasks)}; at most {config.max_per_task} examples per task "
        f"({t.get('examples')} examples); batch {config.batch_size}, lr {config.learning_rate}, "
        f"budget {config.budget_minutes} min -> {t.get('steps')} of {t.get('total_steps')} steps "
        f"({t.get('epochs_completed', 0):.2f} epochs, finished: {t.get('finished')}), "
        f"{t.get('train_seconds')} s of training, final loss (EMA) {t.get('final_loss_ema')}",
        f"- Evaluation: leave-one-out test split, full ranking over {r['eval']['settings']['n_items']} items, "
        f"{r['eval']['n_users']} sampled users (seed {r['eval']['settings']['user_sample']['seed']}), "
        f"constrained beam search with {config.num_beams} beams; {r['eval_wall_seconds']} s "
        f"({r['eval_seconds_per_user']} s per user)",
        "",
        "| R@5 | N@5 | R@10 | N@10 | R@20 | N@20 | invalid rate |",
        "|---|---|---|---|---|---|---|",
        f"| {m['recall@5']:.4f} | {m['ndcg@5']:.4f} | {m['recall@10']:.4f} | {m['ndcg@10']:.4f} | "
        f"{m['recall@20']:.4f} | {m['ndcg@20']:.4f} | {m['invalid_rate']:.4f} |",
        "",
        _reference_line(r["most_popular_reference"]),
        "",
        "Plain-text answers (greedy, unconstrained), base model -> tuned model:",
        "",
    ]
    for q in r["answers_before"]:
        lines.append(f"- *{q}*  \n  base: {r['answers_before'][q]!r}  \n  tuned: {r['answers_after'][q]!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("# LC-Rec benchmarks\n\nWritten by `benchmarks/bench_lcrec.py` (one section per run).\n")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def _reference_line(p: dict) -> str:
    return (f"Reference on the same users, most popular training items: R@5 {p['recall@5']:.4f}, "
            f"N@5 {p['ndcg@5']:.4f}, R@10 {p['recall@10']:.4f}, N@10 {p['ndcg@10']:.4f}, "
            f"R@20 {p['recall@20']:.4f}, N@20 {p['ndcg@20']:.4f}.")


if __name__ == "__main__":
    main()
