"""Small file helpers shared by datasets and artifacts.

- :func:`open_text` reads plain or gzip-compressed text transparently.
- :func:`iter_jsonl` yields ``(line_number, object)`` and reports the file and
  line of any malformed record.
- :func:`atomic_directory` builds a directory next to its destination and
  renames it into place, so a crash never leaves a half-written artifact.
- :func:`write_json` writes sorted, indented JSON with a trailing newline, so the
  same content always gives the same bytes.
- :func:`read_versioned_json` reads the JSON description of any semid artifact
  (index, dataset, run, model) and checks its ``format`` and ``format_version``:
  the one place where "is this a semid X this version can read?" is answered.
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
    "check_output_file",
    "iter_jsonl",
    "open_text",
    "read_versioned_json",
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


def check_output_file(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Check, before any work, that a file can be written at ``path``; returns it.

    Raises:
        ArtifactError: it exists without ``overwrite``, is a directory, or its
            folder cannot be created or written.
    """
    path = Path(path)
    if path.is_dir():
        raise ArtifactError(f"{path} is a directory; give a file name")
    if path.exists() and not overwrite:
        raise ArtifactError(f"{path} already exists; pass --overwrite to replace it")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ArtifactError(f"cannot write {path}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ArtifactError(f"cannot write {path}: {parent} is not writable")
            break
    return path


def _check_output_directory(destination: Path, overwrite: bool, marker: str | None) -> None:
    shown = destination
    destination = destination.absolute()
    for parent in destination.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ArtifactError(f"cannot create {shown}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ArtifactError(f"cannot create {shown}: {parent} is not writable")
            break
    if not destination.exists():
        return
    if not overwrite:
        raise ArtifactError(f"{shown} already exists; pass --overwrite to replace it")
    if not destination.is_dir():
        raise ArtifactError(f"{shown} exists and is not a directory")
    cwd = Path.cwd().absolute()
    if destination.resolve() == cwd.resolve() or destination.resolve() in cwd.resolve().parents:
        raise ArtifactError(
            f"refusing to replace {shown}: it is the current directory or one above it; "
            "give --out a directory of its own"
        )
    if marker is not None and any(destination.iterdir()) and not (destination / marker).exists():
        raise ArtifactError(
            f"refusing to replace {shown}: it has no {marker}, so it is not a semid output of this kind; "
            "--overwrite only replaces what semid wrote (choose another path or delete it yourself)"
        )


@contextlib.contextmanager
def atomic_directory(
    destination: str | os.PathLike[str], *, overwrite: bool = False, marker: str | None = None
) -> Iterator[Path]:
    """Yield an empty staging directory that replaces ``destination`` on success.

    The staging directory lives beside the destination (same filesystem, so the
    final rename is atomic). On an exception it is removed and the destination is
    left untouched. Everything that can be checked before the work starts is
    checked first: a parent that is a file or not writable, an existing
    destination without ``overwrite``.

    Args:
        marker: with ``overwrite``, replace an existing non-empty directory only
            when it holds this file (``tokenizer.json``, ``run.json``, ...), so a
            mistyped path never deletes someone's folder.

    Raises:
        ArtifactError: any of the above, or the staging directory cannot be made.
    """
    destination = Path(destination)
    _check_output_directory(destination, overwrite, marker)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    except OSError as exc:
        raise ArtifactError(f"cannot create {destination}: {exc.strerror or exc}") from None
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


def read_versioned_json(
    path: str | os.PathLike[str],
    *,
    format: str,
    max_version: int,
    what: str,
    hint: str = "",
    error: type[Exception] = ArtifactError,
) -> dict[str, Any]:
    """Read the JSON object at ``path`` and check that it is a ``format`` file semid can read.

    Args:
        format: expected value of the ``format`` field (e.g. ``"semid-run"``).
        max_version: newest ``format_version`` this semid reads.
        what: what the enclosing directory is, for messages ("run", "index", "dataset").
        hint: appended to the "missing" message (how to create one).
        error: exception type for a missing or foreign file (``DataError`` for datasets);
            a newer version is always an :class:`ArtifactError` (upgrade semid).

    Raises:
        ``error``: the directory or file is missing, the JSON is malformed (with the
            line), it is not an object, or ``format`` differs (value shown).
        ArtifactError: ``format_version`` is not an integer or is newer than ``max_version``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise error(f"{what} directory not found: {path.parent}")
    if not path.exists():
        raise error(f"{path.parent} is not a semid {what}: {path.name} is missing{hint}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}: malformed JSON ({exc.msg}); the {what} is corrupted") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason}); the {what} is corrupted") from None
    if not isinstance(meta, dict):
        raise error(f"{path}: expected a JSON object, got {type(meta).__name__}; not a semid {what}")
    if meta.get("format") != format:
        raise error(f"{path}: field 'format' is {meta.get('format')!r}, expected {format!r}; not a semid {what}")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ArtifactError(f"{path}: field 'format_version' must be an integer, got {version!r}")
    if version > max_version:
        raise ArtifactError(
            f"{path}: {what} format_version {version} is newer than this semid supports "
            f"({max_version}); upgrade semid"
        )
    return meta
