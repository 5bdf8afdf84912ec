"""Root of the ``semid`` command.

Each command family lives in its own module exposing ``commands`` (a list of
click commands or groups); :data:`COMMAND_MODULES` names them. Modules must
not import torch or transformers at import time, so ``semid --help`` is fast.

Results (JSON, codes, recommendations) go to stdout; what was written and
progress go to stderr, so ``semid ... > out.json`` keeps only the result.
User errors (:class:`semid.SemidError`, and refusals of the operating system
about a named path) print one line on stderr and exit 1; usage errors exit 2
(click's convention); Ctrl-C exits 130.
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
    "llm_cmds",
)


def one_line(message: str) -> str:
    """A message on one line: the lines of a multi-line message joined with "; "."""
    parts = [line.strip() for line in str(message).splitlines() if line.strip()]
    return "; ".join(parts)


class SemidGroup(click.Group):
    """A click group that turns user errors into one line on stderr and exit 1.

    User errors are :class:`SemidError` and the operating system's refusals
    about a named path (no permission, no space, not a directory, ...); Ctrl-C
    exits 130 with one line. Anything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SemidError as exc:
            raise click.ClickException(one_line(str(exc)) or type(exc).__name__) from None
        except OSError as exc:
            if exc.filename is None or isinstance(exc, SemidError):
                raise
            where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
            raise click.ClickException(f"cannot use {where}: {exc.strerror or exc}") from None
        except KeyboardInterrupt:
            click.echo("interrupted; runs continue from their last checkpoint with --resume", err=True)
            ctx.exit(130)


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
