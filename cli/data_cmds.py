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
        f"{seqs.n_interactions} interactions"
    )


@data.command("stats")
@click.argument("dataset_dir")
def stats_cmd(dataset_dir: str) -> None:
    """Print statistics of DATASET_DIR (or builtin:NAME) as JSON."""
    from semid.data import load_dataset
    from semid.data.stats import dataset_stats

    click.echo(json.dumps(dataset_stats(load_dataset(dataset_dir)), indent=2, sort_keys=True))


commands = [data]
