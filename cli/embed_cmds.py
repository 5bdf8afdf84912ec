"""``semid embed``: item text embeddings for learned schemes."""

from __future__ import annotations

import click

__all__ = ["commands"]


@click.command("embed")
@click.option("--data", "data", required=True, help="Dataset directory (or builtin:NAME).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Output .npz embedding file.")
@click.option("--model", default=None, help="Local sentence-transformers model folder (default: all-MiniLM-L6-v2).")
@click.option("--fields", default="title,price,brand,categories", show_default=True,
              help="Item fields joined into the text, in order (TIGER: title,price,brand,categories).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--no-normalize", is_flag=True, help="Keep raw vectors (default: unit length).")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False),
              help="Embedding cache (default: $SEMID_CACHE/embeddings or ~/.cache/semid/embeddings).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def embed(data, out, model, fields, batch_size, no_normalize, cache_dir, no_cache, overwrite) -> None:
    """Embed every item's text and write an aligned embedding file."""

    import semid
    from semid.embed import embed_items
    from semid.embeddings import save_embeddings
    from semid._io import check_output_file

    check_output_file(out, overwrite=overwrite)  # before minutes of embedding, not after
    dataset = semid.load_dataset(data)
    matrix, meta = embed_items(
        dataset.items, model=model, fields=fields.split(","), batch_size=batch_size,
        normalize=not no_normalize, cache_dir=cache_dir, use_cache=not no_cache,
    )
    meta["dataset"] = str(data)
    save_embeddings(out, dataset.items.item_ids, matrix, meta)
    click.echo(
        f"wrote {out}: {matrix.shape[0]} items x {matrix.shape[1]} dims "
        f"({meta['encoded']} encoded, {meta['cached']} from cache) with {meta['model_name']}",
        err=True,
    )


commands = [embed]
