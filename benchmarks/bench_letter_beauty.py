"""LETTER vs plain RQ-VAE on Amazon Beauty 2014 with the same training budget.

Inputs: MiniLM item embeddings (``semid embed``, 384-d) and the 32-d SASRec item
embeddings exported by ``semid cf export-embeddings`` (LETTER's CF input). Both
schemes use 4 levels x 256 codes, code dim 32 and the same epochs, batch size, seed.
Reported per scheme: build time, code utilization per level, collisions before
resolution, and *CF coherence*: mean cosine similarity of the SASRec embeddings of
item pairs that share a level-1 (or level-1+2) prefix, beside random pairs; the same
for the MiniLM embeddings (semantic coherence), to show what the CF term trades.
Writes ``benchmarks/results/letter.md``::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_letter_beauty.py --epochs 50 \\
        --schemes rqvae,usm,letter --alphas 0.02,0.2,1.0
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import semid  # noqa: E402
from semid.embeddings import load_embeddings  # noqa: E402

from _data import CACHE_ROOT, ensure_beauty  # noqa: E402
from _env import peak_rss_mb, stamp  # noqa: E402


def prefix_coherence(codes: np.ndarray, vectors: np.ndarray, depth: int) -> float:
    """Mean cosine over all item pairs sharing the first ``depth`` code levels.

    Uses ``sum_{i != j in group} cos(i, j) = ||sum_i u_i||^2 - n`` for unit vectors
    ``u``, pooled over groups (weighted by pair counts).
    """
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
    keys = [tuple(row) for row in codes[:, :depth]]
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    total, pairs = 0.0, 0
    for members in groups.values():
        n = len(members)
        if n < 2:
            continue
        s = unit[members].sum(0)
        total += float(s @ s) - n
        pairs += n * (n - 1)
    return total / pairs if pairs else float("nan")


def random_pair_cosine(vectors: np.ndarray) -> float:
    return prefix_coherence(np.zeros((len(vectors), 1), dtype=np.int64), vectors, 1)


def run_scheme(name: str, params: dict, items, semantic: np.ndarray, cf: np.ndarray) -> dict:
    started = time.perf_counter()
    tok = semid.make(name, **params).fit(items, embeddings=semantic, cf_embeddings=cf if name == "letter" else None)
    seconds = time.perf_counter() - started
    info = tok.info_
    semantic_codes = tok.codes[:, : params["n_levels"]]
    return {
        "scheme": name,
        "seconds": round(seconds, 1),
        "utilization": info["utilization"],
        "collision_rate_before": info["collision_rate_before"],
        # usm / letter(indexing=sinkhorn): what the reference codes leave in their index
        "collision_rate_after_sinkhorn": info.get("collision_rate_after_sinkhorn"),
        "params": {k: params[k] for k in ("alpha", "tau", "indexing") if k in params},
        "collisions_resolved": tok.collisions_resolved_,
        "recon_mse": info["recon_mse"],
        "cf_coherence": [round(prefix_coherence(semantic_codes, cf, d), 4) for d in (1, 2)],
        "semantic_coherence": [round(prefix_coherence(semantic_codes, semantic, d), 4) for d in (1, 2)],
        "letter": info.get("letter"),
        "distinct_prefixes": [int(len({tuple(r) for r in semantic_codes[:, :d]})) for d in (1, 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", default=str(CACHE_ROOT / "emb/beauty-minilm.npz"))
    parser.add_argument("--cf-embeddings", default=str(CACHE_ROOT / "emb/beauty-sasrec32.npz"))
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--alphas", default="0.02", help="LETTER CF weights, comma separated (one row each).")
    parser.add_argument("--indexing", default="sinkhorn", choices=("sinkhorn", "extra_level"),
                        help="LETTER collision handling (default: Sinkhorn on the last level, as LETTER's code).")
    parser.add_argument("--diversity-beta", type=float, default=1e-4)
    parser.add_argument("--tau", type=float, default=1.0)
    parser.add_argument("--schemes", default="rqvae,letter")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "letter.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    dataset = semid.load_dataset(ensure_beauty())
    items = dataset.items
    semantic = load_embeddings(args.embeddings, items.item_ids)
    cf = load_embeddings(args.cf_embeddings, items.item_ids)
    common = {"n_levels": 4, "codebook_size": 256, "code_dim": 32, "epochs": args.epochs, "seed": 0}
    alphas = [float(a) for a in args.alphas.split(",")]
    runs = []
    for name in [s.strip() for s in args.schemes.split(",")]:
        if name == "letter":
            runs += [("letter", {**common, "alpha": a, "diversity_beta": args.diversity_beta, "tau": args.tau,
                                 "indexing": args.indexing}) for a in alphas]
        else:
            runs.append((name, common))
    results = []
    for name, params in runs:
        result = run_scheme(name, params, items, semantic, cf)
        print(json.dumps(result), flush=True)
        results.append(result)
    baseline_cf, baseline_sem = random_pair_cosine(cf), random_pair_cosine(semantic)
    lines = [
        "# LETTER vs RQ-VAE on Amazon Beauty 2014 (12,101 items)",
        "",
        f"Semantic input: `{args.embeddings}` ({semantic.shape[1]}-d). CF input (LETTER only): "
        f"`{args.cf_embeddings}` ({cf.shape[1]}-d SASRec item embeddings, see cf.md).",
        f"All: 4 levels x 256 codes, code dim 32, {args.epochs} epochs, RQ-VAE defaults otherwise, seed 0. "
        f"LETTER: alpha as in the table, diversity beta {args.diversity_beta}, tau {args.tau}, K = 10, "
        f"re-clustering every 10 epochs, indexing {args.indexing}.",
        "Collisions before resolution = items whose nearest code is shared; after Sinkhorn = what is left "
        "after the Sinkhorn re-assignment of the last level (usm, letter with indexing=sinkhorn), i.e. what the "
        "LC-Rec / LETTER reference code keeps in its index (ANCHORS.md: LETTER's released Beauty index, 0.11%). "
        "semid then assigns the rest uniquely: every final code is distinct.",
        "CF coherence = mean cosine of the SASRec embeddings over item pairs sharing a level-1 (L1) or "
        "level-1+2 (L1-2) prefix; semantic coherence = the same on the MiniLM embeddings. "
        f"Random pairs: CF {baseline_cf:.4f}, semantic {baseline_sem:.4f}.",
        "",
        stamp().rstrip("\n") + f"\n- peak RSS: {peak_rss_mb():.0f} MiB",
        "",
        "| scheme | alpha | build (s) | utilization per level | collisions before resolution | after Sinkhorn | recon MSE | CF coh. L1 | CF coh. L1-2 | sem. coh. L1 | sem. coh. L1-2 | distinct L1 / L1-2 prefixes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        util = " / ".join(f"{u:.3f}" for u in r["utilization"])
        after = "-" if r["collision_rate_after_sinkhorn"] is None else f"{r['collision_rate_after_sinkhorn'] * 100:.3f}%"
        lines.append(
            f"| {r['scheme']} | {r['params'].get('alpha', '-')} | {r['seconds']} | {util} | "
            f"{r['collision_rate_before'] * 100:.2f}% | {after} | {r['recon_mse']} | "
            f"{r['cf_coherence'][0]} | {r['cf_coherence'][1]} | {r['semantic_coherence'][0]} | "
            f"{r['semantic_coherence'][1]} | {r['distinct_prefixes'][0]} / {r['distinct_prefixes'][1]} |"
        )
    lines += ["", "Raw results:", "", "```json", *[json.dumps(r, sort_keys=True) for r in results], "```", ""]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
