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

from ._io import atomic_directory, read_versioned_json, sha256_file, write_json
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
    for item in tokenizer.item_ids:
        if "\n" in item or "\r" in item:
            raise ArtifactError(f"item id {item!r} contains a line break and cannot be saved")
    path = Path(path)
    with atomic_directory(path, overwrite=overwrite, marker=META_FILE) as staging:
        (staging / "item_ids.txt").write_text("".join(f"{i}\n" for i in tokenizer.item_ids), encoding="utf-8")
        np.save(staging / "codes.npy", tokenizer.codes, allow_pickle=False)
        files = ["item_ids.txt", "codes.npy"]
        if any(x is not None for x in tokenizer.vocab.labels):
            write_json(staging / "labels.json", tokenizer.vocab.labels)
            files.append("labels.json")
        if tokenizer.state_:
            from safetensors.numpy import save_file

            state = {k: np.ascontiguousarray(v) for k, v in sorted(tokenizer.state_.items())}
            save_file(state, str(staging / "state.safetensors"))
            files.append("state.safetensors")
        lengths = (tokenizer.codes >= 0).sum(axis=1)
        meta = {
            "format": INDEX_FORMAT,
            "format_version": INDEX_FORMAT_VERSION,
            "scheme": tokenizer.scheme,
            "params": _jsonable(tokenizer.get_params()),
            "vocab": tokenizer.vocab.to_dict(),
            "n_items": len(tokenizer.item_ids),
            "code_length": {"min": int(lengths.min()), "max": int(lengths.max())},
            "collisions": {"policy": tokenizer.collision_policy, "resolved": tokenizer.collisions_resolved_},
            "supports_cold_start": tokenizer.supports_cold_start,
            "fingerprint": tokenizer.fingerprint,
            "info": _jsonable(tokenizer.info_),
            "files": {name: sha256_file(staging / name) for name in files},
            "versions": library_versions(tokenizer),
        }
        write_json(staging / META_FILE, meta)
    return path


def library_versions(tokenizer) -> dict[str, str]:
    """semid, numpy and the scheme's own numeric libraries (``ItemTokenizer.libraries``), with versions."""
    import importlib

    from . import __version__

    versions = {"semid": __version__, "numpy": np.__version__}
    from .registry import scheme_class

    names = set(getattr(tokenizer, "libraries", ()))
    for part in ("prefix_scheme", "suffix_scheme"):  # a hybrid records both parts' libraries
        if getattr(tokenizer, part, ""):
            names |= set(scheme_class(getattr(tokenizer, part)).libraries)
    for name in sorted(names):
        try:
            versions[name] = str(importlib.import_module(name).__version__)
        except (ImportError, AttributeError):
            versions[name] = "unavailable"
    return versions


def read_index_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``tokenizer.json`` (format name and version) without loading arrays."""
    return read_versioned_json(
        Path(path) / META_FILE, format=INDEX_FORMAT, max_version=INDEX_FORMAT_VERSION, what="index",
        hint=" (build one with `semid build-index`)",
    )


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
    # The description must agree with the files it describes (an edited tokenizer.json does not).
    if meta.get("n_items") != len(item_ids) or len(codes) != len(item_ids):
        raise ArtifactError(
            f"{path / META_FILE}: field 'n_items' is {meta.get('n_items')!r}, but item_ids.txt lists "
            f"{len(item_ids)} items and codes.npy has {len(codes)} rows; the index is inconsistent"
        )
    length = meta.get("code_length", {})
    if codes.ndim != 2 or length.get("max") is not None and length["max"] > codes.shape[1]:
        raise ArtifactError(f"{path / 'codes.npy'}: shape {codes.shape} does not fit code_length {length}")
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
