"""LLM methods on real data with the real SmolLM2-135M-Instruct.

Records, in ``benchmarks/results/llm.md`` (one section per method and dataset), the
metrics, the paper's number on its own protocol, a popularity baseline on the same
candidates, time and peak memory::

    .venv/bin/python benchmarks/bench_llm_methods.py tallrec --ml100k cache/data/ml100k --samples 64
    .venv/bin/python benchmarks/bench_llm_methods.py llmrank --data cache/data/ml100k --users 50
    .venv/bin/python benchmarks/bench_llm_methods.py tuned sdpo --data cache/data/ml100k --run cache/runs/sdpo \
        --budget-minutes 20 --set domain=movie --set train_users=256
    .venv/bin/python benchmarks/bench_llm_methods.py crs --redial ../shared/data/redial --turns 100

``tuned`` runs ``semid train sdpo | llara | instructrec`` (the command a user runs, as a
child process whose peak memory is recorded) and reads its JSON summary; a run that
stopped on its budget resumes with the same command.

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
from semid.params import parse_assignments  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "llm.md"

#: Published numbers on each method's own protocol (ANCHORS / the papers, 7B models).
PUBLISHED = {
    "tallrec": "TALLRec (LLaMA-7B), MovieLens-100K AUC: 67.24 / 67.48 / 71.98 with 16 / 64 / 256 samples",
    "llmrank": "LLMRank (ChatGPT, ML-1M, 20 random candidates, recency prompt): NDCG@1/5/10/20 23.83 / 45.69 / 50.31 / 55.45 (%)",
    "sdpo": "S-DPO (LLaMA-2-7B, 20 candidates): HR@1 (hits / all prompts) 0.5719 LastFM, 0.2902 MovieLens as "
            "re-reported by RecPO's notes (the paper's own table could not be read here)",
    "llara": "LLaRA (LLaMA-2-7B + SASRec, 20 candidates): MovieLens ValidRatio / HR@1 (hits / valid) "
             "0.9789 / 0.4526, LastFM 0.9754 / 0.5246",
    "instructrec": "InstructRec (Flan-T5-XL, 3B): reranking of 20 candidates, the paper reports on Amazon "
                   "Games/CDs; no official code",
    "crs": "He et al. (CIKM 2023), ReDIAL, zero-shot GPT-4: Recall@10 about 0.09-0.10 with items already "
           "mentioned excluded (read from the paper's figure; approximate)",
}


def tallrec(args) -> None:
    from semid.gen.tallrec import TallRecConfig, train_tallrec

    dataset = semid.load_dataset(args.ml100k)
    config = TallRecConfig(samples=args.samples, max_epochs=args.max_epochs, eval_every=args.eval_every,
                           patience=args.patience, valid_samples=args.valid_samples,
                           test_samples=args.test_samples, seed=args.seed)
    overrides = parse_assignments(args.set)
    config = config.with_assignments(overrides)
    started = time.perf_counter()
    summary = train_tallrec(dataset, args.run, config, budget_minutes=args.budget_minutes, resume=Path(args.run).exists(),
                            progress=False)
    seconds = time.perf_counter() - started
    body = "\n".join([
        "### TALLRec on MovieLens-100K, SmolLM2-135M-Instruct + LoRA (q, v; r 8)", "", stamp(),
        f"- this invocation: {seconds / 60:.1f} min wall, peak memory {peak_rss_mb():.0f} MiB",
        f"- settings other than the defaults: {overrides or 'none'} (batch {config.batch_size}, "
        f"lr {config.learning_rate:g}, warm-up {config.warmup_steps} steps)", "",
        "| samples | epochs | stopped | best epoch | valid AUC (best) | test AUC, tuned | test AUC, untuned model | test prompts (likes) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {args.samples} | {summary['epochs']} | {summary['stopped']} | {summary['best_epoch']} | "
        f"{summary['best_valid_auc']:.4f} | **{summary['test_auc']:.4f}** | {summary['test_auc_base']:.4f} | "
        f"{summary['split']['test']} ({summary['split']['test_likes']}) |",
        "", f"Published: {PUBLISHED['tallrec']}. AUC 0.5 is chance.",
    ])
    replace_section(RESULTS, args.section or f"tallrec_{args.samples}", body)
    print(body)


def llmrank(args) -> None:
    from semid.evaluation.candidates import popularity_on_candidates
    from semid.gen.llm.backend import LocalCausalLM
    from semid.gen.llmrank import LLMRankSettings, llmrank_evaluate

    dataset = semid.load_dataset(args.data)
    backend = LocalCausalLM.load(None, batch_size=4)
    train_sequences = semid.evaluation.leave_one_out(dataset).train_sequences
    rows = []
    for scoring in args.scoring.split(","):
        settings = LLMRankSettings(prompt=args.prompt, domain=args.domain, scoring=scoring, position=args.position,
                                   max_new_tokens=args.max_new_tokens, seed=args.seed, on_missing="item_id")
        result = llmrank_evaluate(backend, dataset, settings, users=args.users, progress=True)
        records = result["records"]
        base = popularity_on_candidates(train_sequences, [r["candidates"] for r in records],
                                        [r["target"] for r in records])
        m = result["metrics"]
        where = "" if args.position == "shuffle" else f", target at position {args.position}"
        rows.append(f"| {result['method']} ({args.prompt}{where}) | {m['ndcg@1']:.4f} | {m['ndcg@5']:.4f} | "
                    f"{m['ndcg@10']:.4f} | "
                    f"{m['ndcg@20']:.4f} | {m['hr@1_all']:.4f} / {m['hr@1_valid']:.4f} | {m['valid_ratio']:.2f} | "
                    f"{m['popularity_bias']:+.3f} | {m['seconds_per_user']:.1f} |")
        rows.append(f"| most popular, same candidates | {base['ndcg@1']:.4f} | {base['ndcg@5']:.4f} | "
                    f"{base['ndcg@10']:.4f} | {base['ndcg@20']:.4f} | | | | |")
    random_ndcg = {k: float(np.mean([1 / np.log2(r + 1) if r <= k else 0 for r in range(1, 21)])) for k in (1, 5, 10, 20)}
    body = "\n".join([
        f"### LLMRank on {dataset.name}, SmolLM2-135M-Instruct, {args.users} seeded test users, 20 candidates "
        "(19 random unseen + the target, " + ("shuffled" if args.position == "shuffle" else
                                              f"the target at 0-based position {args.position}") + ")", "", stamp(),
        f"- peak memory {peak_rss_mb():.0f} MiB",
        f"- untitled items shown by their id: {result['protocol']['untitled_items_shown_by_id']}", "",
        "| method | N@1 | N@5 | N@10 | N@20 | HR@1 all / valid | parse rate | popularity bias | s / user |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        f"| random order (expected) | {random_ndcg[1]:.4f} | {random_ndcg[5]:.4f} | {random_ndcg[10]:.4f} | "
        f"{random_ndcg[20]:.4f} | | | | |",
        "", f"Published: {PUBLISHED['llmrank']}.",
    ])
    replace_section(RESULTS, args.section or f"llmrank_{dataset.name}", body)
    print(body)


def _child_run(command: list[str]) -> tuple[dict, float, float]:
    """Run a ``semid`` command; its JSON summary, minutes of wall time and peak memory (MiB)."""
    import json
    import resource
    import subprocess

    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    minutes = (time.perf_counter() - started) / 60
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"{' '.join(command[:3])} failed with exit status {done.returncode}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return json.loads(done.stdout[done.stdout.index("{"):]), minutes, peak


def _train_minutes(summary: dict) -> str:
    stages = summary.get("stages", {"run": summary})
    return f"{sum(s.get('train_seconds', 0.0) for s in stages.values()) / 60:.1f}"


def _hr(m: dict) -> str:
    return f"{m['hr@1_all']:.4f} / {m['hr@1_valid']:.4f} | {m['valid_ratio']:.2f}"


def tuned(args) -> None:
    semid_cli = str(Path(sys.executable).with_name("semid"))
    command = [semid_cli, "train", args.method, "--data", args.data, "--out", args.run, "--quiet"]
    if Path(args.run).exists():
        command.append("--resume")
    if args.budget_minutes:
        command += ["--budget-minutes", str(args.budget_minutes)]
    for extra in args.extra:
        command += extra.split(" ", 1) if extra.startswith("--") and " " in extra else [extra]
    for assignment in args.set:
        command += ["--set", assignment]
    summary, minutes, peak = _child_run(command)
    dataset = semid.load_dataset(args.data)
    pop = summary.get("popularity_same_candidates", {})
    lines = []
    if args.method == "sdpo":
        header = "| model | HR@1 all / valid | valid ratio | epochs (stopped) |"
        for stage in ("sft", "sdpo"):
            if stage in summary["stages"]:
                st = summary["stages"][stage]
                lines.append(f"| {stage.upper()} stage, best weights | {_hr(st['test'])} | {st['epochs']} ({st['stopped']}) |")
        if "gain_hr@1_all" in summary:
            lines.append(f"| gain of S-DPO over SFT (HR@1 all) | {summary['gain_hr@1_all']:+.4f} | | |")
        lines.append(f"| most popular, same candidates | {pop['hr@1_all']:.4f} / {pop['hr@1_valid']:.4f} | 1.00 | |")
        n_test = summary["prompts"]["test"]
        extra = f"- negatives K = {summary['negatives']}, beta {summary['beta']}; prompts {summary['prompts']}"
    elif args.method == "llara":
        header = "| model | HR@1 all / valid | valid ratio | epochs (stopped) |"
        t = summary["test"]
        lines.append(f"| LLaRA ({summary['item_source']}), best weights | {_hr(t)} | {summary['epochs']} ({summary['stopped']}) |")
        lines.append(f"| most popular, same candidates | {pop['hr@1_all']:.4f} / {pop['hr@1_valid']:.4f} | 1.00 | |")
        n_test = summary["prompts"]["test"]
        extra = f"- prompts {summary['prompts']}"
    else:  # instructrec
        header = "| model | HR@1 | HR@5 | HR@10 | N@5 | N@10 | epochs (stopped) |"
        for name, m in (("untuned", summary.get("test_untuned")), ("InstructRec, tuned", summary["test"])):
            if m:
                lines.append(f"| {name} | {m['hr@1']:.4f} | {m['hr@5']:.4f} | {m['hr@10']:.4f} | {m['ndcg@5']:.4f} | "
                             f"{m['ndcg@10']:.4f} | {summary['epochs'] if name != 'untuned' else ''} "
                             f"{'(' + summary['stopped'] + ')' if name != 'untuned' else ''} |")
        lines.append(f"| most popular, same candidates | {pop['recall@1']:.4f} | {pop['recall@5']:.4f} | "
                     f"{pop['recall@10']:.4f} | {pop['ndcg@5']:.4f} | {pop['ndcg@10']:.4f} | |")
        n_test = summary.get("test", {}).get("users", "?")
        extra = f"- instruction formats {summary.get('formats')}"
    columns = header.count("|") - 1
    body = "\n".join([
        f"### {args.method} on {dataset.name}, SmolLM2-135M-Instruct + LoRA, {n_test} seeded test prompts, "
        "20 candidates (19 random unseen + the target)", "", stamp(),
        f"- this invocation {minutes:.1f} min wall (training + evaluation), peak memory {peak:.0f} MiB; "
        f"training time over all invocations {_train_minutes(summary)} min",
        extra, "", header, "|" + "---|" * columns, *lines, "", f"Published: {PUBLISHED[args.method]}.",
    ])
    replace_section(RESULTS, args.section or f"{args.method}_{dataset.name}", body)
    print(body)


def crs(args) -> None:
    command = [str(Path(sys.executable).with_name("semid")), "crs", "--redial", args.redial, "--turns", str(args.turns),
               "--seed", str(args.seed), "--decoding", args.decoding, "--max-new-tokens", str(args.max_new_tokens)]
    if args.answers:
        command += ["--out", args.answers, "--overwrite"]
    result, minutes, peak = _child_run(command)
    rows = []
    for setting, groups in result["settings"].items():
        for group in ("all", "recommendation", "discussion"):
            g = groups[group]
            if not g.get("rows"):
                continue
            cells = " | ".join(f"{g[f'recall@{k}']['mean']:.4f}" for k in (1, 5, 10, 20))
            lo, hi = g["recall@10"]["ci95"]
            rows.append(f"| {setting} | {group} | {g['rows']} | {cells} | [{lo:.4f}, {hi:.4f}] | "
                        f"{g['ndcg@10']['mean']:.4f} |")
    body = "\n".join([
        f"### Zero-shot CRS on ReDIAL ({result['decoding']}), SmolLM2-135M-Instruct, {result['turns']} seeded turns",
        "", stamp(),
        f"- {minutes:.1f} min wall, {result['seconds_per_turn']:.1f} s per turn, peak memory {peak:.0f} MiB; "
        f"answers with at least one catalogue title: {result['parse_rate']:.2f}, "
        f"{result['mean_names_per_answer']:.1f} names mapped per answer",
        "", "| setting | targets | rows | R@1 | R@5 | R@10 | R@20 | R@10 95% CI | N@10 |",
        "|---|---|---|---|---|---|---|---|---|", *rows,
        "", "Rows: gold items; `recommendation` = not mentioned earlier in the dialogue, `discussion` = already mentioned.",
        f"Published: {PUBLISHED['crs']}.",
    ])
    replace_section(RESULTS, f"crs_{result['decoding']}", body)
    print(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tallrec")
    t.add_argument("--ml100k", required=True)
    t.add_argument("--run", default="cache/runs/tallrec-ml100k")
    t.add_argument("--samples", type=int, default=64)
    t.add_argument("--max-epochs", type=int, default=20)
    t.add_argument("--eval-every", type=int, default=2)
    t.add_argument("--patience", type=int, default=3)
    t.add_argument("--valid-samples", type=int, default=200)
    t.add_argument("--test-samples", type=int, default=0, help="seeded test subset (0: the whole test split)")
    t.add_argument("--budget-minutes", type=float, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other TALLRec setting")
    t.add_argument("--section", default=None, help="results section to write (default: tallrec_SAMPLES)")
    r = sub.add_parser("llmrank")
    r.add_argument("--data", required=True)
    r.add_argument("--users", type=int, default=50)
    r.add_argument("--prompt", default="recency")
    r.add_argument("--domain", default="movie")
    r.add_argument("--scoring", default="loglik,constrained,generate")
    r.add_argument("--max-new-tokens", type=int, default=160)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--position", default="shuffle", help="ground truth's place: 'shuffle' or a fixed 0-based index "
                   "(the position-bias study)")
    r.add_argument("--section", default=None, help="results section to write (default: llmrank_DATASET)")
    u = sub.add_parser("tuned")
    u.add_argument("method", choices=["sdpo", "llara", "instructrec"])
    u.add_argument("--data", required=True)
    u.add_argument("--run", required=True)
    u.add_argument("--budget-minutes", type=float, default=None)
    u.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    u.add_argument("--extra", action="append", default=[], help="more options of the command, e.g. '--cf-run DIR'")
    u.add_argument("--section", default=None, help="results section to write (default: METHOD_DATASET)")
    c = sub.add_parser("crs")
    c.add_argument("--redial", required=True)
    c.add_argument("--turns", type=int, default=100)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--decoding", default="generate", choices=["generate", "constrained"])
    c.add_argument("--max-new-tokens", type=int, default=256)
    c.add_argument("--answers", default=None, help="also write every answer and its mapping (JSON) here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    {"tallrec": tallrec, "llmrank": llmrank, "tuned": tuned, "crs": crs}[args.command](args)


if __name__ == "__main__":
    main()
