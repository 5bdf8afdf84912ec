"""bf16 against fp32 training, same seed and batches: speed and what it does to learning.

Two arms per model, each from the same initialisation and the same batch order:

- the parallel generator (RPG), ``train_parallel`` for ``--rpg-epochs`` epochs (a cosine schedule
  over those epochs): train loss per epoch, validation R@10 / N@10 on a seeded 2,000-user
  sample, targets/s;
- TIGER, ``--tiger-steps`` optimizer steps of its loss on the first batches of epoch 0:
  mean loss of the last 10 steps, targets/s.

Records a section of ``benchmarks/results/parallel.md``::

    .venv/bin/python benchmarks/bench_precision.py --data cache/data/beauty --pq cache/idx/pq32 \\
        --rqkmeans cache/idx/rqkmeans --work cache/runs/precision
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import peak_rss_mb, stamp  # noqa: E402
from bench_tiger_common import replace_section  # noqa: E402

import semid  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "parallel.md"
RPG_SETTINGS = dict(d_model=256, n_heads=4, d_ff=1024, lr=0.01, warmup_steps=50, eval_every=2, eval_users=2000)


def rpg_arm(dataset, index, index_path: str, run: Path, epochs: int, precision: str) -> dict:
    from semid.gen.parallel import ParallelConfig, train_parallel

    config = ParallelConfig(**RPG_SETTINGS, max_epochs=epochs, precision=precision, compile=precision == "bf16")
    if run.exists():
        shutil.rmtree(run)
    summary = train_parallel(dataset, index, index_path=index_path, out=run, config=config, progress=False)
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    epochs_log = [e for e in log if e["event"] == "epoch"]
    valid = [e for e in log if e["event"] == "valid"][-1]
    return {"losses": [e["loss"] for e in epochs_log], "recall": valid["recall@10"], "ndcg": valid["ndcg@10"],
            "targets_per_second": float(np.mean([e["targets_per_second"] for e in epochs_log])),
            "train_seconds": summary["train_seconds"]}


def tiger_arm(dataset, tokenizer, steps: int, precision: str) -> dict:
    import torch

    from semid.gen.tiger.batches import collate, make_windows
    from semid.gen.tiger.config import TigerConfig
    from semid.gen.tiger.layout import TokenLayout
    from semid.gen.tiger.model import build_model
    from semid.gen.tiger.train import _LossModule, epoch_batches, make_optimizer
    from semid.gen.training import Distributed

    config = TigerConfig(precision=precision)
    layout = TokenLayout(tokenizer, config.user_buckets)
    split = semid.evaluation.leave_one_out(dataset, max_history=config.max_history)
    windows = make_windows(split.train_sequences, split.train_users, layout, max_history=config.max_history,
                           recipe=config.recipe, encoder_attention=config.attention)
    batches = epoch_batches(windows, config, Distributed(), 0)[:steps]
    model = build_model(config, layout)
    model.train()
    loss_module = _LossModule(model, precision)
    optimizer = make_optimizer(model, config)
    torch.manual_seed(config.seed)
    losses, targets = [], 0
    started = time.perf_counter()
    for batch in batches:
        loss = loss_module(collate([windows[i] for i in batch], layout))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        targets += sum(len(windows[i].targets) for i in batch)
    seconds = time.perf_counter() - started
    return {"last10": float(np.mean(losses[-10:])), "first": losses[0], "targets_per_second": targets / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--pq", required=True, help="a fixed-length index for the parallel generator")
    parser.add_argument("--rqkmeans", required=True, help="TIGER's index")
    parser.add_argument("--work", required=True, help="scratch folder for the runs")
    parser.add_argument("--rpg-epochs", type=int, default=2)
    parser.add_argument("--tiger-steps", type=int, default=40)
    parser.add_argument("--section", default="bench_precision")
    args = parser.parse_args()
    import torch

    from semid.gen.training import cpu_has_bf16

    torch.set_num_threads(2)
    dataset = semid.load_dataset(args.data)
    index, tokenizer = semid.load(args.pq), semid.load(args.rqkmeans)
    work = Path(args.work)
    rpg = {p: rpg_arm(dataset, index, str(Path(args.pq).resolve()), work / f"rpg-{p}", args.rpg_epochs, p)
           for p in ("fp32", "bf16")}
    tiger = {p: tiger_arm(dataset, tokenizer, args.tiger_steps, p) for p in ("fp32", "bf16")}
    lines = [f"### bf16 against fp32 training on {dataset.name}, same seed and batches", "", stamp(),
             f"- CPU has native bfloat16 (avx512_bf16 / amx): {cpu_has_bf16()}; peak memory {peak_rss_mb():.0f} MiB",
             f"- parallel generator: {json.dumps(RPG_SETTINGS)}, {args.rpg_epochs} epochs (cosine over them); "
             "bf16 arm with compile=true", "",
             "| model | precision | train loss per epoch | valid R@10 | valid N@10 | targets/s | speed-up |",
             "|---|---|---|---|---|---|---|"]
    for p in ("fp32", "bf16"):
        r = rpg[p]
        lines.append(f"| parallel generator | {p} | {' / '.join(f'{x:.4f}' for x in r['losses'])} | {r['recall']:.4f} | "
                     f"{r['ndcg']:.4f} | {r['targets_per_second']:.0f} | "
                     f"{r['targets_per_second'] / rpg['fp32']['targets_per_second']:.2f}x |")
    lines += ["", f"TIGER (default `TigerConfig`), {args.tiger_steps} steps of epoch 0's batches:", "",
              "| model | precision | loss, first step | loss, mean of the last 10 | targets/s | speed-up |",
              "|---|---|---|---|---|---|"]
    for p in ("fp32", "bf16"):
        t = tiger[p]
        lines.append(f"| TIGER | {p} | {t['first']:.4f} | {t['last10']:.4f} | {t['targets_per_second']:.0f} | "
                     f"{t['targets_per_second'] / tiger['fp32']['targets_per_second']:.2f}x |")
    replace_section(RESULTS, args.section, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
