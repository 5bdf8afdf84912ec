"""Small file helpers shared by datasets and artifacts.

- :func:`open_text` reads plain or gzip-compressed text transparently.
- :func:`iter_jsonl` yields ``(line_number, object)`` and reports the file and
  line of any malformed record.
- :func:`atomic_directory` builds a directory next to its destination and
  renames it into place, so a crash never leaves a half-written artifact.
- :func:`write_json` writes sorted, indented JSON with a trailing newline, so the
  same content always gives the same bytes.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ArtifactError, DataError

__all__ = [
    "atomic_directory",
    "iter_jsonl",
    "open_text",
    "resolve_input",
    "sha256_file",
    "write_json",
]


def resolve_input(path: str | os.PathLike[str]) -> Path:
    """Return ``path``, or ``path + '.gz'`` when only the compressed file exists.

    Raises:
        DataError: neither exists (the message names both candidates).
    """
    path = Path(path)
    if path.exists():
        return path
    gz = path.with_name(path.name + ".gz")
    if gz.exists():
        return gz
    raise DataError(f"file not found: {path} (also looked for {gz.name})")


def open_text(path: str | os.PathLike[str], encoding: str = "utf-8") -> io.TextIOBase:
    """Open a text file for reading, decompressing ``.gz`` files transparently."""
    path = resolve_input(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, newline=None)
    return open(path, encoding=encoding, newline=None)  # noqa: SIM115


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-blank line of a JSON-lines file.

    Raises:
        DataError: a line is not valid JSON or not a JSON object; the message gives
            the file and the 1-based line number.
    """
    path = resolve_input(path)
    with open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{line_number}: malformed JSON ({exc.msg} at column {exc.colno})"
                ) from None
            if not isinstance(record, dict):
                raise DataError(
                    f"{path}:{line_number}: expected a JSON object, got {type(record).__name__}"
                )
            yield line_number, record


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as sorted, 2-space indented JSON with a trailing newline."""
    text = json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_directory(
    destination: str | os.PathLike[str], *, overwrite: bool = False
) -> Iterator[Path]:
    """Yield an empty staging directory that replaces ``destination`` on success.

    The staging directory lives beside the destination (same filesystem, so the
    final rename is atomic). On an exception it is removed and the destination is
    left untouched.

    Raises:
        ArtifactError: ``destination`` exists and ``overwrite`` is false, or it
            exists and is not a directory.
    """
    destination = Path(destination)
    if destination.exists():
        if not overwrite:
            raise ArtifactError(f"{destination} already exists; pass --overwrite to replace it")
        if not destination.is_dir():
            raise ArtifactError(f"{destination} exists and is not a directory")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.chmod(staging, 0o755)  # mkdtemp creates 0700; an artifact should be readable
    if destination.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old.", dir=destination.parent))
        os.rename(destination, trash / "old")
        os.rename(staging, destination)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(staging, destination)
