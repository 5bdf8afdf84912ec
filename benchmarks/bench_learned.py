"""Learned quantizers (rqkmeans, rqvae, usm): speed, quality and training curves.

Each sub-benchmark replaces its own section of ``benchmarks/results/learned.md``
(sections are delimited by ``<!-- section: NAME -->`` comments), so sections can
be re-run independently::

    .venv/bin/python benchmarks/bench_learned.py rqkmeans          # Beauty, 3x256, < 30 s target
    .venv/bin/python benchmarks/bench_learned.py curve --scheme rqvae --epochs 60
    .venv/bin/python benchmarks/bench_learned.py curve --scheme usm --epochs 60
    .venv/bin/python benchmarks/bench_learned.py synthetic --n 1000000   # < 10 min, < 8 GB target
    .venv/bin/python benchmarks/bench_learned.py determinism --scheme rqvae

Beauty embeddings: ``cache/emb/beauty-minilm.npz`` (``semid embed`` with
all-MiniLM-L6-v2, TIGER text template); the dataset is Amazon Beauty 2014.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import peak_rss_mb, stamp  # noqa: E402
from _data import CACHE_ROOT  # noqa: E402

import semid  # noqa: E402
from semid.diagnostics import learned_diagnostics  # noqa: E402
from semid.embeddings import load_embeddings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LEGACY = RESULTS / "learned"  # earlier layout: one file per section
MARK = "<!-- section: "
ORDER = ["summary", "rqkmeans", "curve-rqvae", "curve-usm", "synthetic", "determinism-rqkmeans", "determinism-rqvae",
         "determinism-usm"]
HEADER = """# Learned quantizers: rqkmeans, rqvae, usm

Targets (issue 3): on Beauty (12,101 items) with MiniLM embeddings on 2 CPU cores, `rqkmeans`
3x256 under 30 s; `rqvae` / `usm` at paper shapes reach a quality index (level-1 utilization
>= 90%, no collapse, low collision rate before resolution) in under 5 minutes; 1M synthetic
items, 3x256 `rqkmeans` under 10 minutes and 8 GB. The machine is shared by several
engineers: every section records the load average, and timings under load are upper bounds.
Sections are regenerated independently by `benchmarks/bench_learned.py`.
"""


def _load_beauty(args) -> tuple[semid.Dataset, np.ndarray]:
    data = semid.load_dataset(args.data)
    return data, load_embeddings(args.embeddings, data.items.item_ids)


def _read_sections() -> dict[str, str]:
    """Sections of ``learned.md`` by name (marked ``<!-- section: NAME -->``)."""
    sections: dict[str, str] = {}
    path = RESULTS / "learned.md"
    if path.exists():
        for chunk in path.read_text(encoding="utf-8").split(MARK)[1:]:
            name, _, text = chunk.partition(" -->\n")
            sections[name.strip()] = text.strip() + "\n"
    if LEGACY.is_dir():  # sections once kept one file each; fold them in
        for file in sorted(LEGACY.glob("*.md")):
            sections.setdefault(file.stem, file.read_text(encoding="utf-8"))
    return sections


def _write(name: str, body: str) -> None:
    """Replace (or add) section ``name`` of ``results/learned.md``; other sections are kept."""
    sections = _read_sections()
    sections[name] = body.rstrip() + "\n"
    rank = {key: i for i, key in enumerate(ORDER)}
    parts = [HEADER]
    for key in sorted(sections, key=lambda k: (rank.get(k.split("@")[0], len(ORDER)), k)):
        parts.append(f"{MARK}{key} -->\n{sections[key]}")
    (RESULTS / "learned.md").write_text("\n".join(parts), encoding="utf-8")
    if LEGACY.is_dir():
        for file in LEGACY.glob("*.md"):
            file.unlink()
        LEGACY.rmdir()
    print(body)


def _diag_lines(report: dict) -> str:
    levels = ", ".join(f"L{lv['level']} {lv['used']}/{lv['size']} (ppl {lv['perplexity']})" for lv in report["levels"])
    lines = [f"- codes used per level: {levels}",
             f"- collision rate before resolution: {report['collisions']['rate_before_resolution']}; "
             f"items resolved: {report['collisions']['resolved']}",
             f"- reconstruction: {report['reconstruction']}"]
    if report["coherence"]["text"]:
        coh = "; ".join(f"prefix {c['length']}: {c['same_prefix']} vs random {c['random']}" for c in report["coherence"]["text"])
        lines.append(f"- text coherence (mean cosine, same prefix vs random pairs): {coh}")
    return "\n".join(lines)


def bench_rqkmeans(args) -> None:
    data, x = _load_beauty(args)
    rows = []
    for balanced in (False, True) if args.balanced else (False,):
        start, cpu = time.perf_counter(), time.process_time()
        tok = semid.make("rqkmeans", balanced=balanced, seed=args.seed).fit(data.items, embeddings=x)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        rows.append((balanced, seconds, cpu, learned_diagnostics(tok, x)))
    body = ["## rqkmeans on Beauty (3 x 256, MiniLM 384-d)\n", stamp(), "| balanced | fit wall (s) | fit CPU (s) | collision rate before | code length | extra-level size |",
            "|---|---|---|---|---|---|"]
    for balanced, seconds, cpu, rep in rows:
        body.append(f"| {balanced} | {seconds:.1f} | {cpu:.1f} | {rep['collisions']['rate_before_resolution']} | "
                    f"{len(rep['levels'])} | {rep['levels'][-1]['size']} |")
    for balanced, _, _, rep in rows:
        body += ["", f"balanced={balanced}:", _diag_lines(rep)]
    body.append(f"\nPeak RSS of the process: {peak_rss_mb():.0f} MiB.")
    _write("rqkmeans", "\n".join(body))


def bench_curve(args) -> None:
    data, x = _load_beauty(args)
    params = {"epochs": args.epochs, "eval_every": args.eval_every, "seed": args.seed, **json.loads(args.set)}
    start, cpu = time.perf_counter(), time.process_time()
    tok = semid.make(args.scheme, **params).fit(data.items, embeddings=x)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rep = learned_diagnostics(tok, x)
    info = tok.info_
    body = [f"## {args.scheme} training curve on Beauty\n", stamp(),
            f"- parameters: `{json.dumps(tok.get_params(), sort_keys=True)}`",
            f"- total fit time (k-means init + {args.epochs} epochs + evaluations + final codes): {seconds:.1f} s "
            f"wall, {cpu:.1f} s CPU ({seconds / args.epochs:.2f} s wall per epoch including evaluation every "
            f"{args.eval_every}; training threads = the `threads` parameter)",
            "", "| epoch | util L1 | util per level | recon MSE (raw) | recon MSE (standardized) | collision rate | train loss | codes restarted (cum.) |",
            "|---|---|---|---|---|---|---|---|"]
    for p in info["curve"]:
        body.append(f"| {p['epoch']} | {p['utilization'][0]:.3f} | {p['utilization']} | {p['recon_mse']:.6f} | "
                    f"{p['recon_mse_std']:.4f} | {p['collision_rate']:.4f} | {p['loss']} | {p['restarted']} |")
    extra = {k: v for k, v in info.items() if k not in ("curve",)}
    body += ["", f"Final: `{json.dumps(extra, sort_keys=True)}`", _diag_lines(rep),
             f"\nPeak RSS of the process: {peak_rss_mb():.0f} MiB."]
    _write(f"curve-{args.scheme}" + (f"@{args.tag}" if args.tag else ""), "\n".join(body))


def bench_synthetic(args) -> None:
    from semid.data.dataset import ItemTable

    rng = np.random.default_rng(args.seed)
    centers = rng.normal(size=(args.clusters, args.dim)).astype(np.float32)
    x = np.empty((args.n, args.dim), dtype=np.float32)
    step = 100_000
    for s in range(0, args.n, step):  # blocks keep the float64 temporaries small
        m = min(step, args.n - s)
        x[s:s + m] = centers[rng.integers(0, args.clusters, m)] + 0.5 * rng.standard_normal((m, args.dim), dtype=np.float32)
    items = ItemTable({"item_id": f"s{i}"} for i in range(args.n))
    rss_before = peak_rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    tok = semid.make("rqkmeans", n_iter=args.n_iter, seed=args.seed).fit(items, embeddings=x)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    body = [f"## rqkmeans on {args.n:,} synthetic items (3 x 256)\n", stamp(),
            f"- data: {args.n:,} x {args.dim} float32, mixture of {args.clusters} Gaussians (seed {args.seed})",
            f"- fit: {seconds:.1f} s wall, {cpu:.1f} s CPU (all threads) ({args.n_iter} k-means iterations per level, "
            "trained on faiss's sample of 256 points per centroid, every point assigned)",
            f"- peak RSS: {peak_rss_mb():.0f} MiB (after data generation: {rss_before:.0f} MiB)",
            f"- collision rate before resolution: {tok.info_['collision_rate_before']}, extra level size "
            f"{tok.vocab.level_sizes[-1]}, utilization {tok.info_['utilization']}"]
    _write("synthetic", "\n".join(body))


def bench_determinism(args) -> None:
    data, x = _load_beauty(args)
    params = json.loads(args.set)
    dirs = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(2):
            tok = semid.make(args.scheme, seed=args.seed, **params).fit(data.items, embeddings=x)
            dirs.append(tok.save(Path(tmp) / f"run{run}"))
        names = sorted(p.name for p in dirs[0].iterdir())
        same = all(filecmp.cmp(dirs[0] / n, dirs[1] / n, shallow=False) for n in names)
    body = [f"## Determinism: {args.scheme} fitted twice with seed {args.seed}\n", stamp(),
            f"- parameters: `{json.dumps(params, sort_keys=True)}`",
            f"- files compared: {', '.join(names)}",
            f"- byte-identical index directories: **{same}**"]
    _write(f"determinism-{args.scheme}", "\n".join(body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(CACHE_ROOT / "data/beauty"))
    parser.add_argument("--embeddings", default=str(CACHE_ROOT / "emb/beauty-minilm.npz"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("rqkmeans")
    p.add_argument("--balanced", action="store_true", help="also fit balanced k-means")
    p = sub.add_parser("curve")
    p.add_argument("--scheme", default="rqvae", choices=("rqvae", "usm"))
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--set", default="{}", help="extra parameters as JSON")
    p.add_argument("--tag", default="", help="section suffix, to keep several curves of one scheme")
    p = sub.add_parser("synthetic")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--clusters", type=int, default=2000)
    p.add_argument("--n-iter", type=int, default=20)
    p = sub.add_parser("determinism")
    p.add_argument("--scheme", default="rqvae", choices=("rqkmeans", "rqvae", "usm"))
    p.add_argument("--set", default="{}", help="parameters as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(args.threads)
    {"rqkmeans": bench_rqkmeans, "curve": bench_curve, "synthetic": bench_synthetic,
     "determinism": bench_determinism}[args.what](args)


if __name__ == "__main__":
    main()
