"""``semid demo``: index -> train TIGER -> evaluate, on the embedded dataset, in minutes.

The steps are the ones a user would type (``semid embed``/``build-index``,
``semid train tiger``, ``semid evaluate``), run in-process on
``builtin:all_beauty_2023`` (356 items, 253 users) with a TIGER smaller than the
paper's (2+2 layers, d_model 64). The default index is the collaborative scheme of "How to Index Item
IDs" (spectral clustering of training co-occurrence; no embeddings, fitted in
seconds). ``--scheme rqvae`` embeds item texts with MiniLM and trains a small
RQ-VAE first (TIGER's recipe; several extra minutes on a loaded 2-core CPU);
any other scheme that needs no embeddings works too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

__all__ = ["commands"]

DEMO_DATA = "builtin:all_beauty_2023"


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("semid-demo"), show_default=True,
              help="Directory for the index and the run.")
@click.option("--scheme", default="collaborative", show_default=True, help="Index scheme.")
@click.option("--budget-minutes", type=float, default=3.0, show_default=True, help="Training time budget.")
@click.option("--max-epochs", type=int, default=40, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace OUT's index and run if they exist.")
def demo(out_dir, scheme, budget_minutes, max_epochs, overwrite) -> None:
    """Build an index, train TIGER and print its test metrics (JSON) on the embedded dataset."""
    import semid
    from semid._io import write_json
    from semid.build import build_index
    from semid.errors import ArtifactError
    from semid.evaluation import MostPopular, evaluate
    from semid.gen.tiger.config import TigerConfig
    from semid.gen.tiger.recommender import load_tiger
    from semid.gen.tiger.train import train_tiger

    index_dir, run_dir = out_dir / "index", out_dir / "tiger"
    for path in (index_dir, run_dir):
        if path.exists() and not overwrite:
            raise ArtifactError(f"{path} already exists; pass --overwrite or another --out")
    started = time.perf_counter()
    dataset = semid.load_dataset(DEMO_DATA)
    params, embeddings = {}, None
    if scheme == "rqvae":
        from semid.embed import embed_items

        click.echo("embedding item texts with all-MiniLM-L6-v2 ...", err=True)
        embeddings, _ = embed_items(dataset.items, progress=False)
        params = {"codebook_size": 32, "epochs": 100}
    click.echo(f"building a {scheme} index ...", err=True)
    tokenizer = build_index(scheme, dataset, params=params, embeddings=embeddings)
    tokenizer.save(index_dir, overwrite=overwrite)
    # A smaller TIGER than the paper's (4+4 layers, d_model 128): 356 items do not need
    # it, and the demo must finish in minutes on a shared 2-core CPU.
    config = TigerConfig(
        num_layers=2, num_decoder_layers=2, d_model=64, num_heads=4, d_kv=16, d_ff=256, lr=2e-3,
        max_epochs=max_epochs, patience=4, eval_every=2, eval_users=100, eval_beams=10, warmup_steps=20,
    )
    click.echo(f"training TIGER ({config.recipe} recipe, budget {budget_minutes} min) ...", err=True)
    summary = train_tiger(
        dataset, tokenizer, index_path=str(index_dir.resolve()), out=str(run_dir), config=config,
        budget_minutes=budget_minutes, overwrite=overwrite,
    )
    click.echo("evaluating TIGER and the most-popular baseline on the test split ...", err=True)
    recommender = load_tiger(run_dir)
    result = evaluate(recommender, dataset, split="test", ks=(5, 10, 20), progress=False)
    baseline = evaluate(MostPopular(dataset), dataset, split="test", ks=(5, 10, 20), progress=False,
                        beyond_accuracy=False)
    result["most_popular"] = {k: v for k, v in baseline["metrics"].items() if k.startswith(("recall", "ndcg"))}
    result["training"] = summary
    result["index"] = {"path": str(index_dir), "scheme": scheme, "levels": int(tokenizer.codes.shape[1])}
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    metrics_path = out_dir / "metrics.json"
    write_json(metrics_path, result)
    click.echo(json.dumps(result, indent=2, sort_keys=True))
    m, p = result["metrics"], result["most_popular"]
    click.echo(
        f"TIGER test R@10 {m['recall@10']:.4f} / N@10 {m['ndcg@10']:.4f} vs most-popular "
        f"{p['recall@10']:.4f} / {p['ndcg@10']:.4f} on {result['n_users']} users. "
        f"Index: {index_dir}, run: {run_dir}, metrics: {metrics_path}",
        err=True,
    )


commands = [demo]
