"""The index artifact: a directory that fully describes a fitted tokenizer.

Layout::

    tokenizer.json      format, format_version, scheme, params, vocab (level sizes,
                        prefixes, token format), collision policy and count,
                        sha256 of every other file, fingerprint, fit info
    item_ids.txt        one item id per line, row order of codes.npy
    codes.npy           int32 (n_items, max_len), -1 padded (no pickle)
    labels.json         optional: human-readable labels per level
    state.safetensors   optional: learned arrays (codebooks, weights)

Same inputs and seed give a byte-identical directory: JSON is written with
sorted keys, arrays in fixed formats, nothing time-dependent. The directory is
staged beside its destination and renamed into place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._io import atomic_directory, sha256_file, write_json
from .errors import ArtifactError
from .vocab import CodeVocab

if TYPE_CHECKING:
    from .tokenizer import ItemTokenizer

__all__ = ["INDEX_FORMAT", "INDEX_FORMAT_VERSION", "load_index", "read_index_meta", "save_index"]

INDEX_FORMAT = "semid-index"
INDEX_FORMAT_VERSION = 1
META_FILE = "tokenizer.json"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_index(tokenizer: "ItemTokenizer", path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``tokenizer`` as an index directory; returns the path.

    Raises:
        ArtifactError: ``path`` exists and ``overwrite`` is false.
    """
    from . import __version__

    for item in tokenizer.item_ids_:
        if "\n" in item or "\r" in item:
            raise ArtifactError(f"item id {item!r} contains a line break and cannot be saved")
    path = Path(path)
    with atomic_directory(path, overwrite=overwrite) as staging:
        (staging / "item_ids.txt").write_text("".join(f"{i}\n" for i in tokenizer.item_ids_), encoding="utf-8")
        np.save(staging / "codes.npy", tokenizer.codes_, allow_pickle=False)
        files = ["item_ids.txt", "codes.npy"]
        if any(x is not None for x in tokenizer.vocab_.labels):
            write_json(staging / "labels.json", tokenizer.vocab_.labels)
            files.append("labels.json")
        if tokenizer.state_:
            from safetensors.numpy import save_file

            state = {k: np.ascontiguousarray(v) for k, v in sorted(tokenizer.state_.items())}
            save_file(state, str(staging / "state.safetensors"))
            files.append("state.safetensors")
        lengths = (tokenizer.codes_ >= 0).sum(axis=1)
        meta = {
            "format": INDEX_FORMAT,
            "format_version": INDEX_FORMAT_VERSION,
            "scheme": tokenizer.scheme,
            "params": _jsonable(tokenizer.get_params()),
            "vocab": tokenizer.vocab_.to_dict(),
            "n_items": len(tokenizer.item_ids_),
            "code_length": {"min": int(lengths.min()), "max": int(lengths.max())},
            "collisions": {"policy": tokenizer.collision_policy, "resolved": tokenizer.collisions_resolved_},
            "supports_cold_start": tokenizer.supports_cold_start,
            "fingerprint": tokenizer.fingerprint,
            "info": _jsonable(tokenizer.info_),
            "files": {name: sha256_file(staging / name) for name in files},
            "versions": {"semid": __version__, "numpy": np.__version__},
        }
        write_json(staging / META_FILE, meta)
    return path


def read_index_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``tokenizer.json`` (format name and version) without loading arrays."""
    path = Path(path)
    meta_path = path / META_FILE
    if not path.is_dir():
        raise ArtifactError(f"index directory not found: {path}")
    if not meta_path.exists():
        raise ArtifactError(f"{path} is not a semid index: {META_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{meta_path}: corrupted ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
        raise ArtifactError(f"{meta_path}: 'format' is not {INDEX_FORMAT!r}; not a semid index")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise ArtifactError(f"{meta_path}: 'format_version' must be an integer, got {version!r}")
    if version > INDEX_FORMAT_VERSION:
        raise ArtifactError(
            f"{meta_path}: index format_version {version} is newer than this semid supports "
            f"({INDEX_FORMAT_VERSION}); upgrade semid to read it"
        )
    return meta


def load_index(path: str | os.PathLike[str]) -> "ItemTokenizer":
    """Load an index directory written by :func:`save_index`, verifying every checksum.

    Raises:
        ArtifactError: missing directory or file, newer format version, checksum
            mismatch (corrupted file), or an unknown scheme.
    """
    from .registry import scheme_class

    path = Path(path)
    meta = read_index_meta(path)
    files = meta.get("files", {})
    for required in ("item_ids.txt", "codes.npy"):
        if required not in files:
            raise ArtifactError(f"{path / META_FILE}: 'files' does not list {required}")
    for name, digest in files.items():
        file_path = path / name
        if not file_path.exists():
            raise ArtifactError(f"{file_path} is missing from the index")
        if sha256_file(file_path) != digest:
            raise ArtifactError(f"{file_path} is corrupted: its sha256 does not match {META_FILE}")
    item_ids = (path / "item_ids.txt").read_text(encoding="utf-8").splitlines()
    try:
        codes = np.load(path / "codes.npy", allow_pickle=False)
    except ValueError as exc:
        raise ArtifactError(f"{path / 'codes.npy'}: unreadable ({exc})") from None
    labels = None
    if "labels.json" in files:
        labels = json.loads((path / "labels.json").read_text(encoding="utf-8"))
    state: dict[str, np.ndarray] = {}
    if "state.safetensors" in files:
        from safetensors.numpy import load_file

        state = load_file(str(path / "state.safetensors"))

    from .tokenizer import FitResult

    cls = scheme_class(meta["scheme"])
    tokenizer = cls.from_saved_params(meta["params"]) if hasattr(cls, "from_saved_params") else cls(**meta["params"])
    vocab = CodeVocab.from_dict(meta["vocab"], labels)
    result = FitResult(
        codes=codes,
        vocab=vocab,
        collisions_resolved=meta["collisions"]["resolved"],
        state=state,
        info=meta.get("info", {}),
        labels=labels,
    )
    tokenizer._set_fitted(item_ids, result)
    tokenizer._restore(state)
    if tokenizer.fingerprint != meta.get("fingerprint"):
        raise ArtifactError(f"{path}: fingerprint mismatch; the index is inconsistent")
    return tokenizer
