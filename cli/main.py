"""Root of the ``semid`` command.

Each command family lives in its own module exposing ``commands`` (a list of
click commands or groups); :data:`COMMAND_MODULES` names them. Modules must
not import torch or transformers at import time, so ``semid --help`` is fast.

User errors (:class:`semid.SemidError`) print one line on stderr and exit 1;
usage errors exit 2 (click's convention).
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from semid.errors import SemidError

__all__ = ["cli", "main"]

#: Modules of ``semid.cli`` that contribute commands.
COMMAND_MODULES = (
    "index_cmds",
    "data_cmds",
    "train_cmds",
    "lcrec_cmds",
    "eval_cmds",
    "demo_cmds",
    "cf_cmds",
    "embed_cmds",
    "diagnose_cmds",
)


class SemidGroup(click.Group):
    """A click group that turns SemidError into a one-line message and exit 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SemidError as exc:
            raise click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


@click.group(cls=SemidGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="semid")
def cli(verbose: int) -> None:
    """semid: item tokenizers (semantic IDs) and generative recommenders."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


for _name in COMMAND_MODULES:
    for _command in importlib.import_module(f"{__package__}.{_name}").commands:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="semid")


if __name__ == "__main__":
    main()
