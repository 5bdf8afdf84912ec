"""TIGER training efficiency: packed block-causal recipe vs the per-prefix recipe.

Part A - throughput, one process, arms interleaved round by round so they share
the machine's (noisy, shared) load. Same model size (paper shape by default),
same initial weights, batches of ~256 next-item targets:

- ``reference``: TIGER's reference pipeline - one example per prefix, random
  batches, every history padded to ``max_history`` items (1 + 20 x L tokens);
- ``per_prefix``: one example per prefix, but length-bucketed batches;
- ``packed``: one block-causal encoder pass per user window supervising all its
  targets (:mod:`semid.gen.tiger.batches`);
- ``hybrid``: ``packed`` for all but each user's latest target, which gets its
  own bidirectional pass (the encoder attention used at inference).

Each arm times the same number of batches, chosen by systematic sampling over
its epoch's batches sorted by work (token positions), so the sample represents
the epoch (the packed recipe has a few expensive batches: windows of long users'
tails, one target per 20-item history). The projected epoch time is
``n_batches x mean sampled batch time``; targets/s = epoch targets / that time.
The load-independent work per epoch (encoder and decoder token positions,
padding included) is reported too.

Part B - accuracy: the same dataset, index and model trained for the same
number of epochs with ``packed``, ``per_prefix`` (same block-causal model),
``per_prefix_full`` (bidirectional encoder, TIGER's original) and ``hybrid``,
over one or more seeds (``--seeds``), validation NDCG@10 on all validation
users after every epoch.

    .venv/bin/python benchmarks/bench_tiger_training.py --data cache/data/beauty \
        --accuracy-data builtin:all_beauty_2023 --rounds 3 --epochs 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import CACHE_ROOT  # noqa: E402
from bench_tiger_common import machine_facts, replace_section  # noqa: E402

import semid  # noqa: E402
from semid.evaluation import leave_one_out  # noqa: E402
from semid.gen.tiger.batches import collate, count_targets, length_bucketed_batches, make_windows  # noqa: E402
from semid.gen.tiger.config import TigerConfig  # noqa: E402
from semid.gen.tiger.layout import TokenLayout  # noqa: E402
from semid.gen.tiger.model import build_model, sequence_loss  # noqa: E402

SMALL = dict(num_layers=2, num_decoder_layers=2, d_model=64, num_heads=4, d_kv=16, d_ff=256)

#: Part B arms: settings that differ between them.
ACCURACY_ARMS = {
    "packed": {"recipe": "packed", "encoder_attention": "block_causal"},
    "per_prefix": {"recipe": "per_prefix", "encoder_attention": "block_causal"},
    "per_prefix_full": {"recipe": "per_prefix", "encoder_attention": "full"},
    "hybrid": {"recipe": "hybrid", "encoder_attention": "full"},
}
DEFAULT_ARMS = ("packed", "per_prefix", "per_prefix_full")


def _index(dataset, split, scheme: str, base: int):
    params = {"base": base} if scheme == "random" else {}
    return semid.make(scheme, **params).fit(dataset.items, split.train_sequences)


def _arm_batches(arm, windows, batch_size, seed):
    rng = np.random.default_rng(seed)
    if arm == "reference":
        order = rng.permutation(len(windows))
        return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    return length_bucketed_batches(windows, batch_size, rng)


def _batch_work(arm, windows, batches, layout, pad_to):
    """Encoder and decoder token positions (padding included) of every batch: two lists."""
    enc, dec = [], []
    for batch in batches:
        rows = [windows[i] for i in batch]
        width = max(len(layout.encoder_ids(w.items, w.user_id)) for w in rows)
        if arm == "reference":
            width = max(width, pad_to)
        dec_width = max(sum(len(layout.item_tokens[t]) for t, _ in w.targets) for w in rows)
        enc.append(width * len(rows))
        dec.append(dec_width * len(rows))
    return enc, dec


def _systematic_sample(work: list[int], k: int, rng) -> list[int]:
    """``k`` batch numbers evenly spaced over the batches sorted by work, in random order."""
    order = np.argsort(work, kind="stable")
    picks = order[np.linspace(0, len(order) - 1, num=min(k, len(order))).round().astype(int)]
    return rng.permutation(picks).tolist()


def throughput(args) -> dict:
    dataset = semid.load_dataset(args.data)
    split = leave_one_out(dataset)
    tokenizer = _index(dataset, split, args.scheme, args.base)
    config = TigerConfig(**(SMALL if args.small else {}))
    layout = TokenLayout(tokenizer, config.user_buckets)
    pad_to = 1 + config.max_history * layout.max_target_len
    arms = {}
    for arm in args.throughput_arms:
        recipe = "per_prefix" if arm == "reference" else arm
        attention = "full" if arm == "hybrid" else "block_causal"
        windows = make_windows(split.train_sequences, split.train_users, layout,
                               max_history=config.max_history, recipe=recipe, encoder_attention=attention)
        batches = _arm_batches(arm, windows, config.batch_size, args.seed)
        enc, dec = _batch_work(arm, windows, batches, layout, pad_to)
        work = [e + d for e, d in zip(enc, dec)]
        sample = _systematic_sample(work, args.rounds * args.batches_per_round, np.random.default_rng(args.seed))
        warmup = [int(np.argsort(work)[len(work) // 2])] * args.batches_per_round
        model = build_model(dataclasses.replace(config, recipe=recipe, encoder_attention=attention), layout).train()
        arms[arm] = {
            "windows": windows, "batches": batches, "model": model, "schedule": warmup + sample,
            "optimizer": torch.optim.AdamW(model.parameters(), lr=1e-3),
            "targets": 0, "seconds": 0.0, "next": 0,
            "work": {"encoder_positions": sum(enc), "decoder_positions": sum(dec),
                     "targets": count_targets(windows), "windows": len(windows), "batches": len(batches)},
        }
    n_params = sum(p.numel() for p in next(iter(arms.values()))["model"].parameters())
    for round_number in range(args.rounds + 1):  # round 0 warms up (a median batch) and is not timed
        for name, arm in arms.items():
            for _ in range(args.batches_per_round):
                batch_ids = arm["batches"][arm["schedule"][arm["next"]]]
                arm["next"] += 1
                rows = [arm["windows"][i] for i in batch_ids]
                started = time.perf_counter()
                batch = collate(rows, layout, pad_encoder_to=pad_to if name == "reference" else None)
                loss = sequence_loss(arm["model"], batch)
                arm["optimizer"].zero_grad(set_to_none=True)
                loss.backward()
                arm["optimizer"].step()
                if round_number > 0:
                    arm["seconds"] += time.perf_counter() - started
                    arm["targets"] += sum(len(w.targets) for w in rows)
        print(f"round {round_number}: " + ", ".join(
            f"{n} {a['targets'] / max(a['seconds'], 1e-9):.1f}/s" for n, a in arms.items()), flush=True)
    out = {"dataset": dataset.name, "index": f"{args.scheme} (code length {layout.code_length})",
           "params": n_params, "config": "small" if args.small else "paper", "arms": {}}
    for name, arm in arms.items():
        timed = arm["next"] - args.batches_per_round
        epoch_seconds = arm["work"]["batches"] * arm["seconds"] / max(timed, 1)
        out["arms"][name] = {"targets_per_s": round(arm["work"]["targets"] / epoch_seconds, 1),
                             "timed_targets": arm["targets"], "timed_batches": timed,
                             "timed_targets_per_s": round(arm["targets"] / max(arm["seconds"], 1e-9), 1),
                             "epoch_minutes": round(epoch_seconds / 60, 1), **arm["work"]}
    return out


def accuracy(args) -> dict:
    dataset = semid.load_dataset(args.accuracy_data)
    split = leave_one_out(dataset)
    tokenizer = _index(dataset, split, args.scheme, args.accuracy_base)
    index_dir = Path(args.work) / "index"
    shutil.rmtree(args.work, ignore_errors=True)
    tokenizer.save(index_dir)
    from semid.gen.tiger.train import train_tiger

    unknown = sorted(set(args.arms) - set(ACCURACY_ARMS))
    if unknown:
        raise SystemExit(f"unknown arm {unknown[0]!r}; choose from {', '.join(ACCURACY_ARMS)}")
    out = {"dataset": dataset.name, "epochs": args.epochs, "model": SMALL, "seeds": args.seeds, "arms": {}}
    for seed in args.seeds:  # seeds outermost: an interrupted run still has whole seeds for every arm
        for name in args.arms:
            config = TigerConfig(**SMALL, **ACCURACY_ARMS[name], max_epochs=args.epochs, patience=args.epochs,
                                 eval_users=0, eval_beams=20, seed=seed, lr=2e-3, warmup_steps=20)
            run_dir = Path(args.work) / f"{name}-seed{seed}"
            started = time.perf_counter()
            summary = train_tiger(dataset, tokenizer, index_path=str(index_dir), out=str(run_dir), config=config,
                                  progress=False)
            wall = time.perf_counter() - started
            log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
            curve = [round(r["ndcg@10"], 4) for r in log if r["event"] == "valid"]
            record = {"seed": seed, "valid_ndcg@10_by_epoch": curve, "best": summary["best_valid_ndcg@10"],
                      "best_epoch": summary["best_epoch"], "final": curve[-1] if curve else float("nan"),
                      "train_seconds": summary["train_seconds"], "wall_seconds_with_validation": round(wall, 1)}
            out["arms"].setdefault(name, []).append(record)
            print(name, record, flush=True)
    return out


def _markdown(facts, part_a, part_b) -> str:
    lines = ["### Training efficiency (bench_tiger_training.py)", ""]
    lines += [f"- {k}: `{v}`" if k == "command" else f"- {k}: {v}" for k, v in facts.items()]
    if part_a:
        ref = part_a["arms"]["reference"]["targets_per_s"]
        lines += ["", f"Throughput on {part_a['dataset']}, index {part_a['index']}, {part_a['config']} model "
                  f"({part_a['params']:,} parameters), batches of ~256 targets, arms interleaved:", "",
                  "| arm | targets/s (epoch projection) | x reference | epoch min (projected) | "
                  "targets/s on timed batches | encoder positions/epoch | decoder positions/epoch | windows "
                  "| timed batches (targets) |", "|---|---|---|---|---|---|---|---|---|"]
        ref_enc = part_a["arms"]["reference"]["encoder_positions"]
        for name, arm in part_a["arms"].items():
            lines.append(
                f"| {name} | {arm['targets_per_s']} | {arm['targets_per_s'] / ref:.2f} | {arm['epoch_minutes']} | "
                f"{arm['timed_targets_per_s']} | "
                f"{arm['encoder_positions']:,} ({ref_enc / max(arm['encoder_positions'], 1):.1f}x fewer) | "
                f"{arm['decoder_positions']:,} | {arm['windows']:,} | {arm['timed_batches']} "
                f"({arm['timed_targets']:,}) |")
    if part_b:
        lines += ["", f"Accuracy on {part_b['dataset']}: {part_b['epochs']} epochs each, model {part_b['model']}, "
                  f"seeds {part_b['seeds']}, validation NDCG@10 on all validation users (20 beams) after every "
                  "epoch. Per arm, mean and sample standard deviation over seeds:", "",
                  "| arm | seeds | best NDCG@10 | NDCG@10 after last epoch | mean of last 5 epochs | train s (mean) |",
                  "|---|---|---|---|---|---|"]
        for name, runs in part_b["arms"].items():
            best = [r["best"] for r in runs]
            final = [r["final"] for r in runs]
            last5 = [float(np.mean(r["valid_ndcg@10_by_epoch"][-5:])) for r in runs]
            lines.append(f"| {name} | {len(runs)} | {_mean_sd(best)} | {_mean_sd(final)} | {_mean_sd(last5)} | "
                         f"{np.mean([r['train_seconds'] for r in runs]):.1f} |")
        lines += ["", "| arm | seed | best NDCG@10 (epoch) | curve | train s | wall s incl. validation |",
                  "|---|---|---|---|---|---|"]
        for name, runs in part_b["arms"].items():
            for r in runs:
                lines.append(f"| {name} | {r['seed']} | {r['best']:.4f} ({r['best_epoch']}) | "
                             f"{r['valid_ndcg@10_by_epoch']} | {r['train_seconds']} | "
                             f"{r['wall_seconds_with_validation']} |")
    return "\n".join(lines) + "\n"


def _mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "-"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(CACHE_ROOT / "data/beauty"))
    parser.add_argument("--accuracy-data", default="builtin:all_beauty_2023")
    parser.add_argument("--scheme", default="random", help="index without embeddings (code length matters)")
    parser.add_argument("--base", type=int, default=12, help="random scheme base (12 -> 4 tokens on Beauty)")
    parser.add_argument("--accuracy-base", type=int, default=8, help="random scheme base for the accuracy data")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches-per-round", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--throughput-arms", default="reference,per_prefix,packed,hybrid",
                        help="throughput part: comma-separated arms (reference must be among them)")
    parser.add_argument("--small", action="store_true", help="throughput with the small model instead of the paper's")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--seed", type=int, default=0, help="throughput part: model initialisation")
    parser.add_argument("--seeds", default="0", help="accuracy part: comma-separated training seeds")
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS), help="accuracy part: comma-separated arms")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default=str(CACHE_ROOT / "tiger/bench_training"))
    parser.add_argument("--results", default=str(Path(__file__).parent / "results" / "tiger.md"))
    parser.add_argument("--section", default="bench_tiger_training", help="marked section of the results file")
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.arms = [a for a in args.arms.split(",") if a]
    args.throughput_arms = [a for a in args.throughput_arms.split(",") if a]
    torch.set_num_threads(args.threads)
    facts = machine_facts()
    part_a = None if args.skip_throughput else throughput(args)
    part_b = None if args.skip_accuracy else accuracy(args)
    facts["load (end)"] = machine_facts()["load"]
    text = _markdown(facts, part_a, part_b)
    print(text)
    replace_section(args.results, args.section, text)


if __name__ == "__main__":
    main()
