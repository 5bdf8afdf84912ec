"""Peak memory of one LoRA training step of SmolLM2 on TALLRec's real prompts, per loss path.

TALLRec trains on the whole prompt (``train_on_inputs``, as its reference), so almost every
position is supervised and the output layer (49k wide) over all of them is the largest
tensor of the step. Three ways to take that step, each measured in a fresh process
(the peak resident set is monotonic within one):

- ``head_one_pass``: the labelled positions' logits in one ``(N, V)`` pass, kept for the
  backward pass (semid before the chunked head);
- ``head_chunked``: :func:`semid.gen.llm.loss.response_loss` as it is, the output layer over
  chunks of 2,048 positions recomputed in the backward pass;
- ``head_chunked+activation_checkpointing``: the same, with the decoder layers' activations
  recomputed too (``--set activation_checkpointing=true`` of TALLRec, LLaRA, InstructRec).

The loss of each path is printed: they must agree. Usage::

    .venv/bin/python benchmarks/bench_llm_memory.py --ml100k $WORK/ml100k --micro-batch 32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import stamp  # noqa: E402
from bench_tiger_common import replace_section  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "llm.md"
VARIANTS = ("head_one_pass", "head_chunked", "head_chunked+activation_checkpointing")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args) -> None:
    import torch

    import semid
    from semid.gen.llm import loss as loss_module
    from semid.gen.llm.adapters import make_trainable
    from semid.gen.llm.base_model import load_causal_lm
    from semid.gen.llm.pairs import encode_pair
    from semid.gen.llm.rendering import tuned_item_texts
    from semid.gen.tallrec.data import build_samples, render_prompt, split_samples

    dataset = semid.load_dataset(args.ml100k)
    train, _, _ = split_samples(build_samples(dataset))
    titles, _ = tuned_item_texts(dataset, "title", None)
    torch.manual_seed(0)
    model, tokenizer = load_causal_lm(None)
    model = make_trainable(model, [], r=8, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"],
                           activation_checkpointing=args.child.endswith("activation_checkpointing"))
    model.train()
    rows = []
    for sample in train[: args.micro_batch]:
        prompt_ids, answer = encode_pair(tokenizer, render_prompt(sample, titles.__getitem__), "Yes." if sample.label
                                         else "No.")
        rows.append((prompt_ids + answer)[-512:])
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row)
        mask[r, : len(row)] = 1
        labels[r, : len(row)] = torch.tensor(row)  # train_on_inputs, as TALLRec
    if args.child == "head_one_pass":
        loss_module.HEAD_CHUNK = 10**9
    loaded = _rss_mib()
    started = time.perf_counter()
    value = loss_module.response_loss(model, ids, mask, labels)
    value.backward()
    seconds = time.perf_counter() - started
    print(json.dumps({"variant": args.child, "loss": float(value), "seconds": seconds, "rss_loaded_mib": loaded,
                      "rss_peak_mib": _rss_mib(), "rows": len(rows), "tokens": int(mask.sum()), "width": width}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml100k", required=True, help="`semid data import --format movielens` of MovieLens-100K")
    parser.add_argument("--micro-batch", type=int, default=32)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    results = []
    for variant in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--ml100k", args.ml100k, "--micro-batch", str(args.micro_batch),
                              "--child", variant], capture_output=True, text=True, env={**os.environ}, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    first = results[0]
    lines = [f"| {r['variant']} | {r['rss_peak_mib']:.0f} | {r['rss_peak_mib'] - r['rss_loaded_mib']:.0f} | "
             f"{r['seconds']:.1f} | {r['loss']:.6f} |" for r in results]
    body = "\n".join([
        "### Memory of one TALLRec training step (SmolLM2-135M + LoRA q, v r 8, loss over the whole prompt)", "",
        stamp(), f"- one micro-batch of {first['rows']} real MovieLens-100K TALLRec samples, {first['tokens']} tokens "
        f"(padded width {first['width']}); forward + backward; each path in a fresh process", "",
        "| loss path | peak RSS (MiB) | peak above the loaded model (MiB) | seconds | loss |",
        "|---|---|---|---|---|", *lines,
    ])
    replace_section(RESULTS, "llm_memory", body)
    print(body)


if __name__ == "__main__":
    main()
