"""The item-embedding file: one ``.npz`` that travels between ``semid embed``,
``build-index --embeddings`` and users who bring their own vectors.

Format (``semid-embeddings``, version 1; a zip of ``.npy`` arrays, no pickle)::

    embeddings   float32 (n, d)    row i describes item_ids[i]
    item_ids     unicode (n,)      item ids, unique
    meta         unicode ()        JSON object: format, format_version, dim,
                                   n_items, semid_version, and what made the
                                   vectors (model, model_fingerprint, template,
                                   fields, normalized, ...)

Write your own with :func:`save_embeddings`; any row order works, since
:func:`load_embeddings` aligns rows to the dataset's item order.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError

__all__ = ["EMBEDDINGS_FORMAT", "EMBEDDINGS_FORMAT_VERSION", "load_embeddings", "read_embeddings", "save_embeddings"]

logger = logging.getLogger(__name__)

EMBEDDINGS_FORMAT = "semid-embeddings"
EMBEDDINGS_FORMAT_VERSION = 1


def _check_finite(path: Any, matrix: np.ndarray, item_ids: Sequence[str]) -> None:
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        bad = np.nonzero(~finite)[0]
        raise DataError(
            f"{path}: embeddings of {len(bad)} item(s) hold NaN or infinite values, first: row {int(bad[0])} "
            f"(item {item_ids[int(bad[0])]!r}); expected finite numbers"
        )


def save_embeddings(
    path: str | os.PathLike[str],
    item_ids: Sequence[str],
    matrix: np.ndarray,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write an embedding file atomically (temporary file + rename); returns the path.

    Args:
        path: destination, conventionally ending in ``.npz``.
        item_ids: ``n`` unique item ids.
        matrix: ``float (n, d)`` finite values, stored as float32.
        meta: JSON-serialisable facts (model, template, fields, ...); format,
            version, dim, n_items and semid_version are added.

    Raises:
        DataError: shape mismatch, duplicate ids, non-finite values.
    """
    from . import __version__

    path = Path(path)
    ids = [str(i) for i in item_ids]
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise DataError(f"{path}: embeddings must be a 2-d array (n_items, dim), got shape {matrix.shape}")
    if matrix.shape[0] != len(ids):
        raise DataError(f"{path}: {matrix.shape[0]} embedding rows for {len(ids)} item ids; they must match")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise DataError(f"{path}: item id {dup!r} appears more than once")
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    _check_finite(path, matrix, ids)
    full_meta = {
        **dict(meta or {}),
        "format": EMBEDDINGS_FORMAT,
        "format_version": EMBEDDINGS_FORMAT_VERSION,
        "dim": int(matrix.shape[1]),
        "n_items": len(ids),
        "semid_version": __version__,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle,
                embeddings=matrix,
                item_ids=np.array(ids, dtype=str) if ids else np.zeros(0, dtype="<U1"),
                meta=np.array(json.dumps(full_meta, sort_keys=True)),
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_embeddings(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """Read a whole embedding file: ``(item_ids, float32 (n, d) matrix, meta)``.

    Raises:
        DataError: missing or unreadable file, missing arrays, wrong shapes or
            dtypes, duplicate ids, NaN or infinite values, unknown format.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"embedding file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path}: not a .npz embedding file (a NumPy zip archive); expected a file written by "
            "`semid embed` or semid.embeddings.save_embeddings"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("embeddings", "item_ids", "meta") if k not in data.files]
            if missing:
                raise DataError(
                    f"{path}: not a semid embedding file: array {missing[0]!r} is missing "
                    "(expected 'embeddings', 'item_ids', 'meta'; see semid.embeddings)"
                )
            matrix, ids, meta_text = data["embeddings"], data["item_ids"], data["meta"]
        for name, value in (("embeddings", matrix), ("item_ids", ids), ("meta", meta_text)):
            if not isinstance(value, np.ndarray):  # np.load hands back raw bytes for non-.npy members
                raise ValueError(f"member {name!r} is not a .npy array")
    except DataError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(
                f"{path}: holds an object array (Python objects), which semid never loads; store 'item_ids' "
                "as a unicode array and 'embeddings' as floats (semid.embeddings.save_embeddings does)"
            ) from None
        raise DataError(f"{path}: unreadable embedding file ({exc}); expected a .npz written by save_embeddings") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: unreadable embedding file ({exc}); expected a .npz written by save_embeddings") from None
    try:
        meta = json.loads(str(meta_text))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: field 'meta' is not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: field 'meta' must be a JSON object")
    version = meta.get("format_version", EMBEDDINGS_FORMAT_VERSION)
    if isinstance(version, int) and version > EMBEDDINGS_FORMAT_VERSION:
        raise DataError(f"{path}: embedding format_version {version} is newer than this semid supports; upgrade semid")
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.floating):
        raise DataError(f"{path}: field 'embeddings' must be a 2-d float array, got {matrix.dtype} {matrix.shape}")
    if ids.ndim != 1 or ids.dtype.kind != "U":
        raise DataError(f"{path}: field 'item_ids' must be a 1-d unicode array, got {ids.dtype} {ids.shape}")
    if ids.shape[0] != matrix.shape[0]:
        raise DataError(
            f"{path}: {matrix.shape[0]} embedding rows but {ids.shape[0]} item ids; expected one row per item id"
        )
    item_ids = ids.tolist()
    if len(set(item_ids)) != len(item_ids):
        raise DataError(f"{path}: field 'item_ids' holds duplicate ids")
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    _check_finite(path, matrix, item_ids)
    if len(matrix) > 1 and np.all(matrix == matrix[0]):
        logger.warning("%s: every item has the same embedding (%s); an index built from it cannot tell items apart",
                       path, "all zeros" if not matrix.any() else "identical rows")
    return item_ids, matrix, meta


def load_embeddings(path: str | os.PathLike[str], item_ids: Sequence[str]) -> np.ndarray:
    """Embeddings of ``item_ids``, in that order: ``float32 (len(item_ids), d)``.

    The file may hold more items than asked for; every asked item must be there.

    Raises:
        DataError: as :func:`read_embeddings`, or items missing from the file
            (the message counts them and names the first few).
    """
    file_ids, matrix, _ = read_embeddings(path)
    position = {item: i for i, item in enumerate(file_ids)}
    missing = [item for item in item_ids if item not in position]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        raise DataError(
            f"{path}: {len(missing)} of {len(item_ids)} items have no embedding (first: {shown}); "
            "re-run semid embed on this dataset or add rows for them"
        )
    rows = np.fromiter((position[item] for item in item_ids), dtype=np.int64, count=len(item_ids))
    return np.ascontiguousarray(matrix[rows])
