"""The trie constraint's cost per decoding step, from a Beauty-size index to a million items.

Times :func:`semid.gen.decoding.constrained_beam_search` with a model-free stepper
(fixed random log-probabilities, so only the constraint work is measured: table
gathers, candidate scoring, top-k, finished pool), in the default adaptive mode
(candidates padded to the widest live node) and with ``static_shapes=True``
(padded to the level's vocabulary size, 256), on synthetic 4 x 256 codes
(``bench_decoding.synthetic_codes``) of growing catalogues, 64 users x 20 beams.
For contrast, the reference constraint (transformers' ``PrefixConstrainedLogitsProcessor``
calling a nested-dict ``prefix_allowed_tokens_fn`` for every beam) is timed on the
same rows at the smallest size.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_decoding_scaling.py [--sizes 12101,100000,1000000] [--record]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _env import stamp  # noqa: E402
from bench_decoding import N_USER_TOKENS, RESULTS, Timer, nested_dict_trie, synthetic_codes  # noqa: E402


class FixedLogProbStepper:
    """No model: every step returns the same random log-probabilities (constraint cost only)."""

    def __init__(self, rows: int, vocab_size: int, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.log_probs = torch.randn(rows, vocab_size, generator=gen).log_softmax(-1)
        self.steps = 0

    def start(self, batch_inputs, num_beams: int):
        return self.log_probs, None

    def step(self, state, tokens, parents):
        self.steps += 1
        return self.log_probs, state


def time_semid(tables, users: int, beams: int, k: int, vocab_size: int, repeats: int, *, static: bool = False) -> dict:
    """Median ms per step of the search; ``static``: ``static_shapes=True`` (width = level size)."""
    from semid.gen.decoding import constrained_beam_search

    stepper = FixedLogProbStepper(users * beams, vocab_size)
    options = {"num_beams": beams, "k": k, "static_shapes": static}
    constrained_beam_search(stepper, tables, None, **options)  # warm-up
    walls, cpus, steps = [], [], tables.max_steps
    for _ in range(repeats):
        with Timer() as timer:
            items, _ = constrained_beam_search(stepper, tables, None, **options)
        walls.append(timer.wall / steps)
        cpus.append(timer.cpu / steps)
    prefix = "static_" if static else ""
    return {
        f"{prefix}ms_per_step_wall": 1e3 * statistics.median(walls),
        f"{prefix}ms_per_step_cpu": 1e3 * statistics.median(cpus),
        f"{prefix}valid": float((items >= 0).float().mean()),
        f"_{prefix}items": items,
    }


def count_candidates(tables, users: int, beams: int, k: int, vocab_size: int) -> dict:
    """Padded and valid (beam, token) candidates per step, from one untimed search.

    Wraps ``TrieTables.allowed`` for the duration of the call (benchmark only), so the
    per-step time can be read per candidate: the work follows the branching of the
    live beams' nodes, not the number of items.
    """
    from semid.gen.decoding import TrieTables, constrained_beam_search

    original, seen = TrieTables.allowed, []

    def counting(self, nodes, active=None, *, width=None):
        tokens, children = original(self, nodes, active, width=width)
        seen.append((tokens.numel(), int((tokens >= 0).sum())))
        return tokens, children

    TrieTables.allowed = counting
    try:
        constrained_beam_search(FixedLogProbStepper(users * beams, vocab_size), tables, None, num_beams=beams, k=k)
    finally:
        TrieTables.allowed = original
    return {
        "padded_per_step": statistics.mean(p for p, _ in seen),
        "valid_per_step": statistics.mean(v for _, v in seen),
    }


def time_reference(codes, vocab, users: int, beams: int, vocab_size: int, repeats: int) -> dict:
    """Per-step cost of the nested-dict constraint on ``users * beams`` rows of valid prefixes."""
    from transformers.generation.logits_process import PrefixConstrainedLogitsProcessor

    trie = nested_dict_trie(codes, vocab)

    def allowed(batch_id: int, sent: torch.Tensor) -> list[int]:
        node = trie
        for token in sent.tolist():
            node = node.get(token, {})
        return list(node.keys())

    processor = PrefixConstrainedLogitsProcessor(allowed, beams)
    gen = torch.Generator().manual_seed(0)
    picks = torch.randint(0, codes.shape[0], (users * beams,), generator=gen)
    offsets = torch.tensor(vocab.level_offsets())
    prefix_tokens = 2 + offsets + torch.from_numpy(codes[picks.numpy()]).long()
    scores = torch.randn(users * beams, vocab_size, generator=gen)
    per_step = []
    for depth in range(codes.shape[1]):
        ids = torch.cat([torch.zeros(users * beams, 1, dtype=torch.long), prefix_tokens[:, :depth]], dim=1)
        walls = []
        for _ in range(repeats):
            start = time.perf_counter()
            processor(ids, scores)
            walls.append(time.perf_counter() - start)
        per_step.append(statistics.median(walls))
    return {"ms_per_step_wall": 1e3 * statistics.mean(per_step)}


def _branching_by_depth(trie) -> list[list[float]]:
    """``[max, mean]`` children per node at each depth with children."""
    counts = np.diff(trie.child_ptr)
    out = []
    for d in range(int(trie.node_depth.max())):
        c = counts[trie.node_depth == d]
        out.append([int(c.max()), round(float(c.mean()), 1)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="12101,100000,1000000")
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--beams", type=int, default=20)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--record", action="store_true", help=f"append the results to {RESULTS}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from semid.gen.decoding import TrieTables
    from semid.trie import CodeTrie
    from semid.vocab import CodeVocab

    rows = []
    for n_items in (int(x) for x in args.sizes.split(",")):
        codes = synthetic_codes(n_items)
        vocab = CodeVocab([256, 256, 256, max(256, int(codes[:, 3].max()) + 1)])
        vocab_size = 2 + vocab.n_tokens + N_USER_TOKENS
        start = time.perf_counter()
        trie = CodeTrie(codes)
        tables = TrieTables.build(trie, vocab, cache=False)
        build_s = time.perf_counter() - start
        arrays = (tables.child_ptr, tables.edge_token, tables.edge_child)
        table_mb = sum(t.numel() * t.element_size() for t in arrays) / 2**20
        row = {
            "items": n_items, "nodes": trie.n_nodes, "branching": _branching_by_depth(trie),
            "build_s": build_s, "table_mb": table_mb,
            **time_semid(tables, args.users, args.beams, args.k, vocab_size, args.repeats),
            **time_semid(tables, args.users, args.beams, args.k, vocab_size, args.repeats, static=True),
            **count_candidates(tables, args.users, args.beams, args.k, vocab_size),
        }
        row["static_same_items"] = bool(torch.equal(row.pop("_items"), row.pop("_static_items")))
        row["ns_per_padded_candidate_cpu"] = 1e6 * row["ms_per_step_cpu"] / row["padded_per_step"]
        if n_items == min(int(x) for x in args.sizes.split(",")):
            row["reference_ms_per_step_wall"] = time_reference(
                codes, vocab, args.users, args.beams, vocab_size, args.repeats
            )["ms_per_step_wall"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.record:
        record(rows, args)


def record(rows: list[dict], args) -> None:
    lines = [
        f"\n## Constraint cost per step vs catalogue size ({args.users} users x {args.beams} beams, "
        f"{args.threads} thread(s), no model)\n\n{stamp()}",
        "| items | trie nodes | children per node by depth [max, mean] | build tables (s) | edge tables (MiB) "
        "| semid ms/step (wall) | semid ms/step (CPU) | candidates/step: valid, padded | CPU ns per padded candidate "
        "| valid outputs | static shapes: ms/step (wall) | static shapes: ms/step (CPU) | static: same items |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['items']:,} | {r['nodes']:,} | {r['branching']} | {r['build_s']:.1f} | {r['table_mb']:.1f} | "
            f"{r['ms_per_step_wall']:.2f} | {r['ms_per_step_cpu']:.2f} | {r['valid_per_step']:,.0f}, "
            f"{r['padded_per_step']:,.0f} | {r['ns_per_padded_candidate_cpu']:.1f} | {100 * r['valid']:.0f}% | "
            f"{r['static_ms_per_step_wall']:.2f} | {r['static_ms_per_step_cpu']:.2f} | {r['static_same_items']} |"
        )
    ref = [r for r in rows if "reference_ms_per_step_wall" in r]
    if ref:
        lines += [
            "",
            f"- reference constraint (nested-dict `prefix_allowed_tokens_fn` through transformers' "
            f"`PrefixConstrainedLogitsProcessor`) on the same {args.users * args.beams} rows at "
            f"{ref[0]['items']:,} items: {ref[0]['reference_ms_per_step_wall']:.1f} ms/step (wall)",
        ]
    lines.append("")
    with RESULTS.open("a") as handle:
        handle.write("\n".join(lines))


if __name__ == "__main__":
    main()
