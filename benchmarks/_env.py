"""Hardware and load description written next to every benchmark number."""

from __future__ import annotations

import os
import platform
import resource
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["hardware", "peak_rss_mb", "portable_command", "stamp"]

REPO = Path(__file__).resolve().parent.parent
#: Where the shared datasets live next to a clone (as the README's commands spell it).
SHARED = REPO.parent / "shared"


def _portable_path(text: str, work: Path | None) -> str:
    """An absolute path as a reader can use it: inside the clone relative to it, the shared
    datasets as ``../shared/...``, anything else (derived data, runs) relative to ``$WORK``."""
    if not text.startswith("/"):
        return text
    path = Path(text)
    for root, label in ((REPO, ""), (SHARED, "../shared/"), (work, "$WORK/")):
        if root is not None and path.is_relative_to(root) and path != root:
            return label + str(path.relative_to(root))
    return f"$WORK/{path.name}"


def portable_command(argv: list[str] | None = None) -> str:
    """The command line of this process with no path of this machine in it.

    The interpreter becomes ``.venv/bin/python``; absolute paths inside the clone become
    relative to it, the shared datasets ``../shared/...``, and every other absolute path
    (derived data, runs: also inside ``KEY=PATH`` and ``--flag=PATH`` arguments) is
    written relative to ``$WORK``, the deepest folder they all share. A results file then
    never records where one machine kept its files.
    """
    argv = list(sys.argv if argv is None else argv)
    split = [arg.rpartition("=") if "=" in arg and arg.rpartition("=")[2].startswith("/") else ("", "", arg)
             for arg in argv]
    elsewhere = [Path(tail).parent for _, _, tail in split if tail.startswith("/")
                 and not Path(tail).is_relative_to(REPO) and not Path(tail).is_relative_to(SHARED)]
    work = Path(os.path.commonpath(elsewhere)) if elsewhere else None
    words = [".venv/bin/python"] + [head + sep + _portable_path(tail, work) for head, sep, tail in split]
    return " ".join(w if "$WORK" in w and " " not in w else shlex.quote(w) for w in words)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GiB RAM, Python {platform.python_version()}"


def stamp() -> str:
    """Date, hardware, load average and the command line, for a results file."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        commit = "?"
    return (
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- hardware: {hardware()}\n"
        f"- load average at the end (1/5/15 min): {load}\n"
        f"- commit: {commit}\n"
        f"- command: `{portable_command()}`\n"
    )
