"""Shared by the TIGER benchmark scripts: machine facts and marked sections in a results file.

A script owns the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``
in ``benchmarks/results/tiger.md`` and replaces only that section, so several
scripts (and hand-written prose) share one file per topic.
"""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

from _env import portable_command

__all__ = ["machine_facts", "replace_section"]


def machine_facts() -> dict[str, str]:
    """CPU model, core count, load average, torch version/threads, UTC date and the command."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": f"{cpu} x {os.cpu_count()} logical cores",
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "torch": f"{torch.__version__}, {torch.get_num_threads()} threads",
        "load": load,
        "command": portable_command(),
    }


def replace_section(path: str | os.PathLike[str], name: str, body: str) -> None:
    """Write ``body`` between the ``name`` markers of ``path`` (appended when absent)."""
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
