"""Constrained decoding speed: semid's trie beam search vs transformers ``generate``.

Side by side in one run, same model, same inputs, 20 beams, top 20 items per user:

- ``semid``: :func:`semid.gen.decoding.constrained_beam_search` with :class:`T5Stepper`
  (per-depth trie tables, one gather per step, vectorized over users x beams);
- ``reference``: ``model.generate(prefix_allowed_tokens_fn=...)`` over a nested-dict
  trie, the approach of the public TIGER / LC-Rec code (a Python call per beam and step).

Model: a TIGER-size ``T5ForConditionalGeneration`` (4+4 layers, d_model 128, 6 heads x 64,
d_ff 1024, random weights: speed does not depend on them) over a synthetic
Beauty-size index (12,101 items, 3 clustered levels x 256 plus TIGER's collision level,
vocab 4 x 256). Inputs: one user token + 20 history items x 4 tokens = 81 tokens.

Also measured in the same run: a large fp32 matmul's FLOP/s (the CPU's practical compute
bound under the same thread setting) and the model FLOPs per user counted from the
shapes, giving the fraction of the compute bound the search reaches.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_decoding.py [--users 256] [--record]
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

RESULTS = HERE / "results" / "decoding.md"
N_USER_TOKENS = 2000
HISTORY = 20


def synthetic_codes(n_items: int, seed: int = 0, size: int = 256) -> np.ndarray:
    """TIGER-like codes: 3 clustered levels plus the collision number (``append_disambiguation``).

    Level 1 follows one skewed distribution; at levels 2 and 3 every parent prefix has
    its own sparse Dirichlet distribution over the ``size`` values (semantic clusters),
    so branching varies as in a learned RQ-VAE index. Returns ``int32 (n_items, 4)``.
    """
    from semid.collisions import append_disambiguation

    rng = np.random.default_rng(seed)
    parent = np.zeros(n_items, dtype=np.int64)
    columns = []
    for concentration in (2.0, 0.3, 0.3):
        groups, inverse = np.unique(parent, return_inverse=True)
        cdf = np.cumsum(rng.dirichlet(np.full(size, concentration), size=groups.size), axis=1).astype(np.float32)
        draw = rng.random(n_items, dtype=np.float32)
        value = np.empty(n_items, dtype=np.int64)
        for lo in range(0, n_items, 65536):  # inverse CDF, in chunks to bound memory
            rows = slice(lo, lo + 65536)
            value[rows] = (cdf[inverse[rows]] < draw[rows, None]).sum(axis=1)
        value = np.minimum(value, size - 1)
        columns.append(value)
        parent = parent * size + value
    out, _, _ = append_disambiguation(np.stack(columns, axis=1))
    return out


def tiger_t5(vocab_size: int, seed: int = 0):
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=vocab_size, d_model=128, d_kv=64, num_heads=6, d_ff=1024, num_layers=4,
        num_decoder_layers=4, dropout_rate=0.1, feed_forward_proj="relu", decoder_start_token_id=0,
        pad_token_id=0, eos_token_id=1,
    )
    torch.manual_seed(seed)
    return T5ForConditionalGeneration(config).eval()


def make_inputs(codes: np.ndarray, vocab, n_users: int, seed: int) -> torch.Tensor:
    """``int64 (n_users, 81)``: a user token then 20 random items' code tokens."""
    rng = np.random.default_rng(seed)
    offsets = np.asarray(vocab.level_offsets())
    items = rng.integers(0, codes.shape[0], size=(n_users, HISTORY))
    tokens = 2 + offsets[None, None, :] + codes[items]  # (U, 20, 4)
    users = 2 + vocab.n_tokens + rng.integers(0, N_USER_TOKENS, size=(n_users, 1))
    return torch.from_numpy(np.concatenate([users, tokens.reshape(n_users, -1)], axis=1)).long()


class Timer:
    """Wall-clock and process CPU seconds of a block (CPU time is less hurt by a shared machine)."""

    def __enter__(self) -> "Timer":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def matmul_flops_per_s(size: int = 2048, repeats: int = 10) -> dict[str, float]:
    """Best FLOP/s of a ``size``-cube fp32 matmul, by wall clock and by process CPU time."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        with Timer() as timer:
            torch.mm(a, b)
        best_wall, best_cpu = min(best_wall, timer.wall), min(best_cpu, timer.cpu)
    return {"wall": 2 * size**3 / best_wall, "cpu": 2 * size**3 / best_cpu}


def flops_per_user(config, input_len: int, beams: int, code_len: int) -> dict[str, float]:
    """Multiply-add FLOPs (2 per MAC) of the semid search per user, counted from shapes.

    Encoder over ``input_len`` tokens; cross-attention keys/values and the first decoder
    step once per user; then ``code_len - 1`` decoder steps for ``beams`` rows (the last
    code token is chosen, never fed). Attention score FLOPs included; softmax, norms and
    the trie are not (negligible next to the matmuls).
    """
    d, inner, ff, vocab = config.d_model, config.num_heads * config.d_kv, config.d_ff, config.vocab_size
    layers, decoder_layers = config.num_layers, config.num_decoder_layers
    proj = 2 * d * inner  # one of q/k/v/o for one token
    ffn = 2 * 2 * d * ff
    encoder = layers * input_len * (4 * proj + ffn + 2 * 2 * input_len * inner)
    cross_kv = decoder_layers * input_len * 2 * proj

    def decoder_row(position: int) -> float:
        self_attn = 4 * proj + 2 * 2 * position * inner
        cross = 2 * proj + 2 * 2 * input_len * inner
        return decoder_layers * (self_attn + cross + ffn) + 2 * d * vocab

    decoder = decoder_row(1) + sum(beams * decoder_row(t + 1) for t in range(1, code_len))
    return {"encoder": encoder, "cross_kv": cross_kv, "decoder": decoder, "total": encoder + cross_kv + decoder}


def nested_dict_trie(codes: np.ndarray, vocab) -> dict:
    """The reference structure: dict of dicts keyed by decoder tokens, rooted at the start token."""
    root: dict = {}
    for code in codes.tolist():
        node = root.setdefault(0, {})
        for level, index in enumerate(code):
            node = node.setdefault(2 + vocab.token_id(level, index), {})
    return root


def run_reference(model, inputs, trie: dict, beams: int, k: int, batch: int, code_len: int) -> tuple[list, Timer]:
    def allowed(batch_id: int, sent: torch.Tensor) -> list[int]:
        node = trie
        for token in sent.tolist():
            node = node.get(token, {})
        return list(node.keys())

    out = []
    with Timer() as timer:
        for lo in range(0, inputs.shape[0], batch):
            out.extend(_generate(model, inputs[lo : lo + batch], allowed, beams, k, code_len))
    return out, timer


def _generate(model, inputs, allowed, beams: int, k: int, code_len: int) -> list:
    seqs = model.generate(
        input_ids=inputs, attention_mask=torch.ones_like(inputs),
        prefix_allowed_tokens_fn=allowed, num_beams=beams, num_return_sequences=k, do_sample=False,
        length_penalty=0.0, early_stopping=True, max_new_tokens=code_len, min_new_tokens=0,
        eos_token_id=1, pad_token_id=0, decoder_start_token_id=0,
    )
    return seqs[:, 1:].view(-1, k, seqs.shape[1] - 1).tolist()


def run_semid(stepper, inputs, tables, beams: int, k: int, batch: int) -> tuple[torch.Tensor, Timer]:
    from semid.gen.decoding import constrained_beam_search

    out = []
    with Timer() as timer:
        for lo in range(0, inputs.shape[0], batch):
            items, _ = constrained_beam_search(stepper, tables, inputs[lo : lo + batch], num_beams=beams, k=k)
            out.append(items)
    return torch.cat(out), timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=12101)
    parser.add_argument("--users", type=int, default=256, help="users decoded by semid per measurement")
    parser.add_argument("--reference-users", type=int, default=64, help="users decoded by generate()")
    parser.add_argument("--batches", default="16,64,128", help="semid batch sizes (users) to measure")
    parser.add_argument("--reference-batch", type=int, default=16)
    parser.add_argument("--beams", type=int, default=20)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="semid measurements per setting (median)")
    parser.add_argument("--record", action="store_true", help=f"append the results to {RESULTS}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from semid.gen.decoding import FastT5Stepper, T5Stepper, TrieTables
    from semid.trie import CodeTrie
    from semid.vocab import CodeVocab

    codes = synthetic_codes(args.items)
    vocab = CodeVocab([256, 256, 256, max(256, int(codes[:, 3].max()) + 1)])
    trie = CodeTrie(codes)
    tables = TrieTables.build(trie, vocab)
    model = tiger_t5(2 + vocab.n_tokens + N_USER_TOKENS)
    inputs = make_inputs(codes, vocab, max(args.users, args.reference_users), seed=1)
    item_of_code = {tuple(c): i for i, c in enumerate(codes.tolist())}
    to_code = {2 + vocab.token_id(level, i): (level, i) for level in range(4) for i in range(vocab.level_sizes[level])}
    peak = matmul_flops_per_s()

    ref_seqs, ref_timer = run_reference(
        model, inputs[: args.reference_users], nested_dict_trie(codes, vocab), args.beams, args.k,
        args.reference_batch, codes.shape[1],
    )
    ref_items = [[_item_of_tokens(seq, to_code, item_of_code) for seq in user] for user in ref_seqs]
    rows = [{
        "method": "transformers generate + nested-dict prefix_allowed_tokens_fn", "batch": args.reference_batch,
        "users_per_s": args.reference_users / ref_timer.wall, "users_per_cpu_s": args.reference_users / ref_timer.cpu,
        "valid": sum(i >= 0 for u in ref_items for i in u) / (len(ref_items) * args.k),
        "distinct": all(len(set(u)) == len(u) for u in ref_items), "same_as_reference": 1.0,
    }]
    batches = sorted({args.reference_batch, *(int(b) for b in args.batches.split(","))})
    for name, stepper in (("T5Stepper", T5Stepper(model)), ("FastT5Stepper", FastT5Stepper(model))):
        run_semid(stepper, inputs[:4], tables, args.beams, args.k, 4)  # warm-up
        # the per-beam cross-attention copies of T5Stepper need ~20 MB per user: cap its batch
        for batch in [b for b in batches if name == "FastT5Stepper" or b <= 64]:
            timers = []
            for _ in range(args.repeats):
                items, timer = run_semid(stepper, inputs[: args.users], tables, args.beams, args.k, batch)
                timers.append(timer)
            rows.append({
                "method": f"semid constrained_beam_search + {name}", "batch": batch,
                "users_per_s": args.users / statistics.median(t.wall for t in timers),
                "users_per_cpu_s": args.users / statistics.median(t.cpu for t in timers),
                "valid": float((items >= 0).float().mean()),
                "distinct": all(len(set(u)) == len(u) for u in items.tolist()),
                "same_as_reference": sum(a == b for a, b in zip(items.tolist(), ref_items)) / len(ref_items),
            })
    flops = flops_per_user(model.config, inputs.shape[1], args.beams, codes.shape[1])
    best = max(rows[1:], key=lambda r: r["users_per_s"])
    summary = {
        "items": args.items, "nodes": trie.n_nodes, "beams": args.beams, "k": args.k, "threads": args.threads,
        "rows": rows,
        "speedup_same_batch": max(r["users_per_s"] for r in rows[1:] if r["batch"] == args.reference_batch)
        / rows[0]["users_per_s"],
        "speedup_best": best["users_per_s"] / rows[0]["users_per_s"],
        "speedup_best_cpu": max(r["users_per_cpu_s"] for r in rows[1:]) / rows[0]["users_per_cpu_s"],
        "gflops_per_user": {key: value / 1e9 for key, value in flops.items()},
        "matmul_gflops_per_s": {key: value / 1e9 for key, value in peak.items()},
        "fraction_of_compute_bound_wall": best["users_per_s"] * flops["total"] / peak["wall"],
        "fraction_of_compute_bound_cpu": max(r["users_per_cpu_s"] for r in rows[1:]) * flops["total"] / peak["cpu"],
    }
    print(json.dumps(summary, indent=2))
    if args.record:
        record(summary, args)


def _item_of_tokens(tokens: list[int], to_code: dict, item_of_code: dict) -> int:
    """Item of a generated token list, -1 unless every token is a code token of its level."""
    pairs = [to_code.get(t, (-1, -1)) for t in tokens]
    if any(level != position for position, (level, _) in enumerate(pairs)):
        return -1
    return item_of_code.get(tuple(index for _, index in pairs), -1)


def record(s: dict, args) -> None:
    g, m = s["gflops_per_user"], s["matmul_gflops_per_s"]
    lines = [
        f"\n## Speed run: {s['items']:,} items ({s['nodes']:,} trie nodes), {s['beams']} beams, top {s['k']}, "
        f"{s['threads']} thread(s)\n\n{stamp()}",
        "| method | batch (users) | users/s (wall) | users per CPU-second | valid outputs | distinct per user "
        "| same top-k list as reference |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        lines.append(
            f"| {r['method']} | {r['batch']} | {r['users_per_s']:.1f} | {r['users_per_cpu_s']:.1f} | "
            f"{100 * r['valid']:.1f}% | {r['distinct']} | {100 * r['same_as_reference']:.0f}% |"
        )
    lines += [
        "",
        f"- speed-up over the reference (wall): {s['speedup_same_batch']:.1f}x at the same batch size, "
        f"{s['speedup_best']:.1f}x at the best batch size; by CPU time {s['speedup_best_cpu']:.1f}x",
        f"- model FLOPs per user on the semid path: {g['total']:.3f} GFLOP (encoder {g['encoder']:.3f}, "
        f"cross-attention K/V {g['cross_kv']:.3f}, decoder + lm_head {g['decoder']:.3f})",
        f"- fp32 matmul 2048^3 in the same run: {m['wall']:.1f} GFLOP/s by wall clock, {m['cpu']:.1f} GFLOP/s "
        f"per CPU-second; semid's best reaches {100 * s['fraction_of_compute_bound_wall']:.0f}% (wall) / "
        f"{100 * s['fraction_of_compute_bound_cpu']:.0f}% (CPU time) of that bound",
        "",
    ]
    with RESULTS.open("a") as handle:
        handle.write("\n".join(lines))


if __name__ == "__main__":
    main()
