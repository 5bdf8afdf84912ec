"""``semid data``: import datasets into the canonical format and describe them."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import click

from semid.errors import ArtifactError, ParameterError

__all__ = ["commands", "data"]

# Importers are listed here, not imported, so ``semid --help`` stays fast; a test
# checks this tuple matches semid.data.importers.IMPORTERS.
FORMATS = ("amazon2023", "lcrec", "movielens", "p5", "recbole")
REMAP_CHOICES = ("asin", "random", "none")


@click.group()
def data() -> None:
    """Import datasets and describe them."""


@data.command("import")
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS), help="Layout of SRC.")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--remap", type=click.Choice(REMAP_CHOICES), default=None,
    help="Replace item ids that leak time order (p5: default asin; lcrec: default none).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --remap random.")
@click.option("--name", default=None, help="Dataset name (default: from the source files).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def import_cmd(fmt: str, src: Path, out: Path, remap: str | None, seed: int, name: str | None, overwrite: bool) -> None:
    """Import SRC (a directory in layout FORMAT) into the canonical dataset directory OUT."""
    from semid.data import save_dataset
    from semid.data.importers import IMPORTERS

    if out.exists() and not overwrite:  # fail before the slow part
        raise ArtifactError(f"{out} already exists; pass --overwrite to replace it")
    importer = IMPORTERS[fmt]
    options: dict[str, object] = {"seed": seed, "name": name}
    if remap is not None:
        if "remap" not in inspect.signature(importer).parameters:
            raise ParameterError(f"format {fmt!r} does not support --remap (its ids carry no time order)")
        options["remap"] = remap
    dataset = importer(src, **options)
    save_dataset(dataset, out, overwrite=overwrite)
    seqs = dataset.sequences
    click.echo(
        f"wrote {out}: {len(seqs)} users, {len(dataset.items)} items, "
        f"{seqs.n_interactions} interactions",
        err=True,
    )


@data.command("stats")
@click.argument("dataset_dir")
def stats_cmd(dataset_dir: str) -> None:
    """Print statistics of DATASET_DIR (or builtin:NAME) as JSON."""
    from semid.data import load_dataset
    from semid.data.stats import dataset_stats

    click.echo(json.dumps(dataset_stats(load_dataset(dataset_dir)), indent=2, sort_keys=True))


@data.command("subset")
@click.argument("src")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--top-items", type=int, default=None, help="Keep the N most frequent items.")
@click.option("--users", type=int, default=None, help="Keep a seeded sample of N users (before k-core).")
@click.option("--min-user", type=int, default=5, show_default=True, help="k-core: fewest interactions per user.")
@click.option("--min-item", type=int, default=5, show_default=True, help="k-core: fewest interactions per item.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --users sample.")
@click.option("--name", default=None, help="Name of the new dataset (default: SRC's name + '-subset').")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def subset_cmd(
    src: str, out: Path, top_items: int | None, users: int | None, min_user: int, min_item: int, seed: int,
    name: str | None, overwrite: bool,
) -> None:
    """Write a smaller dataset derived from SRC (directory or builtin:NAME) to OUT.

    Keeps the --top-items most frequent items and/or a seeded sample of --users users,
    then applies the k-core filter until it is stable. Sequence order and
    timestamps are kept; OUT's dataset.json records how it was derived.
    """
    from semid.data import load_dataset, save_dataset, subset_dataset

    if out.exists() and not overwrite:
        raise ArtifactError(f"{out} already exists; pass --overwrite to replace it")
    dataset = subset_dataset(
        load_dataset(src), top_items=top_items, users=users, min_user_interactions=min_user,
        min_item_interactions=min_item, seed=seed, name=name,
    )
    save_dataset(dataset, out, overwrite=overwrite)
    seqs = dataset.sequences
    click.echo(f"wrote {out}: {len(seqs)} users, {len(dataset.items)} items, {seqs.n_interactions} interactions",
               err=True)


commands = [data]
