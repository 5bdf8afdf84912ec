"""Index commands: list-schemes, build-index, inspect, encode, decode, export, import-index."""

from __future__ import annotations

import json
from pathlib import Path

import click

from semid.interop import EXPORT_FORMATS

__all__ = ["commands"]


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False))


def _load_embedding_files(embeddings: Path | None, cf_embeddings: Path | None, item_ids: list[str]):
    """``(embeddings, cf_embeddings)`` aligned with ``item_ids``; ``None`` where no file is given."""
    if embeddings is None and cf_embeddings is None:
        return None, None
    from semid.embeddings import load_embeddings

    emb = load_embeddings(embeddings, item_ids) if embeddings is not None else None
    cf = load_embeddings(cf_embeddings, item_ids) if cf_embeddings is not None else None
    return emb, cf


@click.command("list-schemes")
@click.option("--verbose", "-l", "long", is_flag=True, help="Show requirements and parameters.")
def list_schemes(long: bool) -> None:
    """List the available tokenizer schemes (one per line, or JSON with -l)."""
    import semid
    from semid.params import describe_settable
    from semid.registry import scheme_class

    if not long:
        for name in semid.available_schemes():
            click.echo(name)
        return
    out = {}
    for name in semid.available_schemes():
        cls = scheme_class(name)
        out[name] = {
            "description": cls.description,
            "requires": sorted(cls.requires),
            "collision_policy": cls.collision_policy,
            "cold_start": cls.supports_cold_start,
            "params": describe_settable(cls),
        }
    _echo_json(out)


@click.command("build-index")
@click.option("--scheme", required=True, help="Scheme name (see `semid list-schemes`), or PREFIX+SUFFIX.")
@click.option("--data", "data_dir", required=True, help="Dataset directory or builtin:NAME.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Index directory to write.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Scheme parameter (repeatable).")
@click.option("--seed", type=int, default=None, help="Random seed (same data + seed -> identical index).")
@click.option("--embeddings", type=click.Path(path_type=Path), default=None, help="Item embeddings file (learned schemes).")
@click.option("--cf-embeddings", type=click.Path(path_type=Path), default=None, help="Collaborative item embeddings file.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def build_index_cmd(scheme, data_dir, out_dir, assignments, seed, embeddings, cf_embeddings, overwrite) -> None:
    """Fit a scheme on a dataset's items and training sequences and save the index."""
    import semid
    from semid.build import build_index
    from semid.errors import ArtifactError
    from semid.params import parse_assignments
    from semid.registry import scheme_class

    if out_dir.exists() and not overwrite:  # fail before any expensive work
        raise ArtifactError(f"{out_dir} already exists; pass --overwrite to replace it")
    cls = scheme_class(scheme)
    params = cls.parse_params(parse_assignments(assignments))
    if seed is not None:
        params["seed"] = seed
    dataset = semid.load_dataset(data_dir)
    emb, cf = _load_embedding_files(embeddings, cf_embeddings, dataset.items.item_ids)
    tokenizer = build_index(scheme, dataset, params=params, embeddings=emb, cf_embeddings=cf)
    tokenizer.save(out_dir, overwrite=overwrite)
    lengths = tokenizer.codes.shape[1]
    click.echo(
        f"wrote {out_dir}: {len(tokenizer)} items, up to {lengths} levels, "
        f"{tokenizer.collisions_resolved_} collisions resolved",
        err=True,
    )


@click.command("inspect")
@click.argument("index", type=click.Path(path_type=Path))
@click.option("--embeddings", type=click.Path(path_type=Path), default=None, help="Text embeddings for coherence.")
@click.option("--cf-embeddings", type=click.Path(path_type=Path), default=None, help="CF embeddings for coherence.")
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="Write a PNG of per-level usage.")
def inspect_cmd(index, embeddings, cf_embeddings, plot) -> None:
    """Print a JSON summary of an index (usage, entropy, branching, diagnostics)."""
    import semid
    from semid.summary import index_summary

    tokenizer = semid.load(index)
    summary = index_summary(tokenizer)
    learned = getattr(tokenizer, "supports_cold_start", False) and tokenizer.state_
    if learned or embeddings is not None or cf_embeddings is not None or plot is not None:
        from semid import diagnostics

        emb, cf = _load_embedding_files(embeddings, cf_embeddings, tokenizer.item_ids)
        summary["diagnostics"] = diagnostics.learned_diagnostics(tokenizer, embeddings=emb, cf_embeddings=cf)
        if plot is not None:
            diagnostics.plot_level_usage(tokenizer, plot)
    _echo_json(summary)


@click.command("encode")
@click.argument("index", type=click.Path(path_type=Path))
@click.argument("items", nargs=-1, required=True)
def encode_cmd(index, items) -> None:
    """Print the token string of each ITEM id, one per line: ITEM<TAB>TOKENS."""
    import semid

    tokenizer = semid.load(index)
    for item in items:
        click.echo(f"{item}\t{tokenizer.render(item)}")


@click.command("decode")
@click.argument("index", type=click.Path(path_type=Path))
@click.argument("codes", nargs=-1, required=True)
def decode_cmd(index, codes) -> None:
    """Print the item id of each CODE (token string like '<a_1><b_2>' or '1,2')."""
    import semid

    from semid.errors import CodeFormatError

    tokenizer = semid.load(index)
    for text in codes:
        if "<" in text:
            code = text
        else:
            try:
                code = tuple(int(x) for x in text.replace(" ", "").split(",") if x)
            except ValueError:
                raise CodeFormatError(
                    f"code {text!r} is neither a token string (like {tokenizer.vocab.render(tokenizer.codes[0])}) "
                    "nor comma-separated integers (like 1,2,3)"
                ) from None
        click.echo(f"{text}\t{tokenizer.decode(code)}")


@click.command("export")
@click.argument("index", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="lcrec", show_default=True,
              help="lcrec: LC-Rec/LETTER JSON; grid: GRID's semantic-ID tensor (.pt); recbole3: RecBole3.0 "
              "item_sids.json with global ids (TIGER); recbole3-raw: per-level codes (RPG, LC-Rec); cornac-tiger / "
              "-letter / -rpg / -diffgrm: that cornac model, untrained, on these codes (.pkl, needs cornac).")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def export_cmd(index, fmt, out, overwrite) -> None:
    """Write the index in another framework's format (see docs/interop.md)."""
    import semid
    from semid._io import check_output_file
    from semid.interop import export_index

    check_output_file(out, overwrite=overwrite)
    export_index(semid.load(index), out, fmt)
    click.echo(f"wrote {out}", err=True)


@click.command("import-index")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--data", "data_dir", required=True, help="Dataset the index describes (dir or builtin:NAME).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="lcrec", show_default=True,
              help="As for `semid export`; grid and recbole3 items are the dataset's items in order; cornac-*: a "
                   "model saved with cornac's save() (.pkl or its folder; needs cornac).")
@click.option("--level-sizes", default="", metavar="K[,K...]",
              help="recbole3: the codebook sizes the file's codes were offset by (default: inferred).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def import_index_cmd(file, data_dir, out_dir, fmt, level_sizes, overwrite) -> None:
    """Turn another framework's index file into a semid index."""
    import semid
    from semid.errors import ArtifactError

    if out_dir.exists() and not overwrite:
        raise ArtifactError(f"{out_dir} already exists; pass --overwrite to replace it")
    dataset = semid.load_dataset(data_dir)
    params = {"level_sizes": level_sizes} if level_sizes else {}
    tokenizer = semid.make("imported", path=str(file.resolve()), format=fmt, **params).fit(dataset.items)
    tokenizer.save(out_dir, overwrite=overwrite)
    click.echo(
        f"wrote {out_dir}: {len(tokenizer)} items, {tokenizer.collisions_resolved_} collisions resolved", err=True
    )


commands = [
    build_index_cmd,
    decode_cmd,
    encode_cmd,
    export_cmd,
    import_index_cmd,
    inspect_cmd,
    list_schemes,
]
