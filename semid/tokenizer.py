"""The one interface every item tokenizer implements.

A scheme subclasses :class:`ItemTokenizer`, declares ``scheme``, ``requires``,
``collision_policy`` and its ``params``, and implements :meth:`_fit`, which
returns a :class:`FitResult`. Everything else (encode/decode, vocab, trie,
save/load, validation) lives here, so all schemes behave the same way.

Shapes: codes are ``int32 (n_items, max_len)`` arrays padded with ``-1``;
embeddings are ``float32 (n_items, dim)`` arrays aligned with the item order.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .data.dataset import ItemTable, Sequences
from .errors import (
    ColdStartUnsupportedError,
    DataError,
    MissingFieldError,
    NotFittedError,
    ParameterError,
    UnknownCodeError,
    UnknownItemError,
)
from .params import Param
from .trie import CodeTrie
from .vocab import CodeVocab

__all__ = ["Code", "FitInputs", "FitResult", "ItemTokenizer", "pad_to_fixed_length"]

logger = logging.getLogger(__name__)

Code = tuple[int, ...]

#: Requirement names a scheme may declare in ``requires``.
REQUIREMENTS = ("sequences", "embeddings", "cf_embeddings", "title", "categories")


@dataclass
class FitInputs:
    """Everything a scheme may learn from; validated before ``_fit`` sees it.

    Attributes:
        items: the items, in row order.
        sequences: *training* sequences only (item ids, oldest first), or None.
        embeddings: ``float32 (n_items, dim)`` semantic embeddings, or None.
        cf_embeddings: ``float32 (n_items, dim_cf)`` collaborative embeddings, or None.
    """

    items: ItemTable
    sequences: list[list[str]] | None = None
    embeddings: np.ndarray | None = None
    cf_embeddings: np.ndarray | None = None


@dataclass
class FitResult:
    """What a scheme's ``_fit`` produces.

    Attributes:
        codes: ``int32 (n_items, max_len)``, ``-1`` padded, unique per row.
        vocab: level sizes and prefixes of the codes.
        collisions_resolved: items whose code had to be changed to be unique.
        state: learned arrays needed after loading (e.g. codebooks), by name.
        info: JSON-serialisable facts about the fit (e.g. reconstruction error).
        labels: optional human-readable labels per level (e.g. category names).
    """

    codes: np.ndarray
    vocab: CodeVocab
    collisions_resolved: int = 0
    state: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    labels: list[list[str] | None] | None = None


class ItemTokenizer:
    """Base class: maps item ids to codes (integer tuples) and back.

    Subclasses set the class attributes below and implement :meth:`_fit`.
    Construction only stores keyword parameters (unknown names are rejected);
    values are validated when :meth:`fit` starts.
    """

    scheme: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    collision_policy: ClassVar[str] = ""
    supports_cold_start: ClassVar[bool] = False
    params: ClassVar[dict[str, Param]] = {}
    description: ClassVar[str] = ""
    #: Libraries whose numerics shape the codes; their versions are recorded in the artifact.
    libraries: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # An explicit signature (``RQVAETokenizer(*, seed=0, n_levels=3, ...)``) for
        # help(), IDEs and scikit-learn's clone, built from the declared ``params``.
        super().__init_subclass__(**kwargs)
        cls.__signature__ = inspect.Signature([
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=param.default)
            for name, param in cls.params.items()
        ])

    def __init__(self, **params: Any):
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            valid = ", ".join(sorted(self.params)) or "none"
            raise ParameterError(
                f"{self.scheme}: unknown parameter {unknown[0]!r}; valid parameters: {valid}"
            )
        self._params = {name: p.default for name, p in self.params.items()}
        self._params.update(params)
        self._fitted = False

    # -- parameters -------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Current parameter values (a copy); ``deep`` is accepted for scikit-learn and changes nothing."""
        del deep
        return dict(self._params)

    def set_params(self, **params: Any) -> "ItemTokenizer":
        """Change parameters (validated at the next :meth:`fit`); returns ``self``, as scikit-learn does.

        Raises:
            ParameterError: an unknown parameter name (the message lists the valid ones).
        """
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            valid = ", ".join(sorted(self.params)) or "none"
            raise ParameterError(f"{self.scheme}: unknown parameter {unknown[0]!r}; valid parameters: {valid}")
        self._params.update(params)
        return self

    def _validated_params(self) -> dict[str, Any]:
        return {name: self.params[name].validate(self.scheme, value) for name, value in self._params.items()}

    @classmethod
    def parse_params(cls, assignments: Mapping[str, str]) -> dict[str, Any]:
        """Convert ``{"name": "text"}`` from the command line to typed values."""
        out = {}
        for key, text in assignments.items():
            if key not in cls.params:
                valid = ", ".join(sorted(cls.params)) or "none"
                raise ParameterError(f"{cls.scheme}: unknown parameter {key!r}; valid parameters: {valid}")
            out[key] = cls.params[key].parse(cls.scheme, text)
        return out

    @property
    def seed(self) -> int:
        return int(self._params.get("seed", 0))

    # -- fitting ----------------------------------------------------------------
    def fit(
        self,
        items: ItemTable,
        sequences: Sequences | Sequence[Sequence[str]] | None = None,
        *,
        embeddings: np.ndarray | None = None,
        cf_embeddings: np.ndarray | None = None,
    ) -> "ItemTokenizer":
        """Learn codes for ``items``; returns ``self``.

        Args:
            items: the catalogue; row order fixes the order of every array.
            sequences: *training* interaction sequences (use
                :func:`semid.evaluation.leave_one_out` to get them; validation and
                test items must not leak into an index).
            embeddings: ``float (n_items, dim)`` item embeddings for learned schemes.
            cf_embeddings: ``float (n_items, dim)`` collaborative embeddings (LETTER).

        Raises:
            ParameterError, DataError, MissingFieldError: invalid parameters or inputs.
        """
        params = self._validated_params()
        self._params = params
        inputs = self._check_inputs(items, sequences, embeddings, cf_embeddings)
        logger.info("fitting %s on %d items", self.scheme, len(items))
        result = self._fit(inputs)
        self._set_fitted(items.item_ids, result)
        logger.info(
            "fitted %s: %d items, %d levels, %d collisions resolved",
            self.scheme, len(items), result.vocab.n_levels, result.collisions_resolved,
        )
        return self

    def _fit(self, inputs: FitInputs) -> FitResult:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must implement _fit")

    def _fit_prefix(self, inputs: FitInputs) -> FitResult:
        """The grouping part of the code, used when this scheme is a hybrid's prefix.

        Returns fixed-length codes that may collide (the hybrid's suffix makes
        them unique). Schemes with a natural grouping (category path, collaborative
        clusters) return it without their within-group index; the default is the
        full code, padded to a fixed length.
        """
        return pad_to_fixed_length(self._fit(inputs))

    def _check_inputs(self, items, sequences, embeddings, cf_embeddings) -> FitInputs:
        if len(items) == 0:
            raise DataError(f"{self.scheme}: cannot fit on an empty item table")
        seqs = None
        if sequences is not None:
            raw = sequences.items if isinstance(sequences, Sequences) else sequences
            seqs = [list(s) for s in raw]
            for u, seq in enumerate(seqs):
                for item in seq:
                    if item not in items:
                        raise DataError(f"{self.scheme}: training sequence #{u + 1} names unknown item {item!r}")
        if "sequences" in self.requires and seqs is None:
            raise DataError(f"scheme {self.scheme!r} needs training sequences; pass sequences=")
        emb = _check_matrix(self.scheme, "embeddings", embeddings, len(items))
        cf = _check_matrix(self.scheme, "cf_embeddings", cf_embeddings, len(items))
        if "embeddings" in self.requires and emb is None:
            raise DataError(f"scheme {self.scheme!r} needs item embeddings (semid embed, then --embeddings)")
        if "cf_embeddings" in self.requires and cf is None:
            raise DataError(f"scheme {self.scheme!r} needs collaborative embeddings (--cf-embeddings)")
        for name in self._required_fields():
            try:
                items.require(name, scheme=self.scheme)
            except MissingFieldError as exc:
                if "on_missing" not in self.params:
                    raise
                other = [c for c in self.params["on_missing"].choices or () if c != self._params["on_missing"]]
                raise MissingFieldError(f"{exc}; --set on_missing={other[0]} handles such items") from None
        return FitInputs(items=items, sequences=seqs, embeddings=emb, cf_embeddings=cf)

    def _required_fields(self) -> list[str]:
        """Item fields every item must have (checked before ``_fit``)."""
        return [name for name in ("title", "categories") if name in self.requires]

    def _set_fitted(self, item_ids: Sequence[str], result: FitResult) -> None:
        codes = np.ascontiguousarray(result.codes, dtype=np.int32)
        if codes.ndim != 2 or codes.shape[0] != len(item_ids):
            raise ParameterError(f"{self.scheme}: codes shape {codes.shape} does not match {len(item_ids)} items")
        self._item_ids: list[str] = list(item_ids)
        self._codes = codes
        self._vocab = result.vocab
        if result.labels is not None:
            self._vocab.labels = [list(x) if x is not None else None for x in result.labels]
        self._trie = CodeTrie(codes)  # also proves uniqueness
        self.collisions_resolved_ = int(result.collisions_resolved)
        self.state_ = dict(result.state)
        self.info_ = dict(result.info)
        self._index = {item: i for i, item in enumerate(self._item_ids)}
        self._fitted = True

    # -- introspection ----------------------------------------------------------
    def _require_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError(f"this {self.scheme} tokenizer is not fitted yet; call fit() or semid.load()")

    @property
    def vocab(self) -> CodeVocab:
        self._require_fitted()
        return self._vocab

    @property
    def trie(self) -> CodeTrie:
        self._require_fitted()
        return self._trie

    @property
    def item_ids(self) -> list[str]:
        self._require_fitted()
        return self._item_ids

    @property
    def codes(self) -> np.ndarray:
        """``int32 (n_items, max_len)`` codes, ``-1`` padded, row ``i`` for ``item_ids[i]``."""
        self._require_fitted()
        return self._codes

    def __len__(self) -> int:
        return len(self.item_ids)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(self._params.items()))
        return f"{type(self).__name__}({params})"

    # -- encode / decode --------------------------------------------------------
    def encode(self, item_id: str) -> Code:
        """Code of a fitted item. Raises :class:`UnknownItemError`."""
        self._require_fitted()
        try:
            row = self.codes[self._index[item_id]]
        except KeyError:
            raise UnknownItemError(
                f"item {item_id!r} is not in this {self.scheme} index"
                + ("; use encode_new() for unseen items" if self.supports_cold_start else "")
            ) from None
        return tuple(int(v) for v in row if v >= 0)

    def encode_batch(self, item_ids: Sequence[str]) -> list[Code]:
        return [self.encode(item) for item in item_ids]

    def decode(self, code: Sequence[int] | str) -> str:
        """Item id of a code (tuple or token string). Raises :class:`UnknownCodeError`."""
        self._require_fitted()
        if isinstance(code, str):
            code = self.vocab.parse(code)
        try:
            position = self.trie.item_at([int(c) for c in code])
        except (TypeError, ValueError):
            position = -1
        if position < 0:
            raise UnknownCodeError(f"code {tuple(code)} is not the code of any item in this index")
        return self.item_ids[position]

    def decode_batch(self, codes: Sequence[Sequence[int] | str], *, strict: bool = True) -> list[str | None]:
        """Decode many codes; with ``strict=False`` an unknown code gives ``None``."""
        out: list[str | None] = []
        for code in codes:
            try:
                out.append(self.decode(code))
            except (UnknownCodeError, ValueError):
                if strict:
                    raise
                out.append(None)
        return out

    def render(self, item_id: str) -> str:
        """Token string of a fitted item, e.g. ``"<a_12><b_5><c_0>"``."""
        return self.vocab.render(self.encode(item_id))

    def encode_new(self, item: Mapping[str, Any] | None = None, *, embedding: np.ndarray | None = None) -> Code:
        """Code for an item that was not fitted (cold start), from its features.

        Schemes that cannot do this raise :class:`ColdStartUnsupportedError`.
        The returned code may equal an existing item's code (the nearest one).
        """
        raise ColdStartUnsupportedError(
            f"scheme {self.scheme!r} cannot encode unseen items: {self._cold_start_reason()}"
        )

    def _cold_start_reason(self) -> str:
        return "its codes are not a function of item features"

    # -- persistence ------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the index directory atomically; see :mod:`semid.artifact`."""
        from .artifact import save_index

        self._require_fitted()
        return save_index(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "ItemTokenizer":
        from .artifact import load_index

        tokenizer = load_index(path)
        if cls is not ItemTokenizer and not isinstance(tokenizer, cls):
            raise ParameterError(f"{path} holds a {tokenizer.scheme!r} index, not {cls.scheme!r}")
        return tokenizer

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        """Hook for schemes that rebuild helpers from loaded state (default: none)."""

    @property
    def fingerprint(self) -> str:
        """sha256 over item ids, codes and vocab: what a generator checkpoint records."""
        import hashlib
        import json

        self._require_fitted()
        digest = hashlib.sha256()
        digest.update("\n".join(self.item_ids).encode())
        digest.update(self.codes.tobytes())
        digest.update(json.dumps(self.vocab.to_dict(), sort_keys=True).encode())
        return digest.hexdigest()


PAD_LABEL = "<pad>"


def pad_to_fixed_length(result: FitResult) -> FitResult:
    """Replace ``-1`` padding by an explicit pad token (one more value per padded level).

    Used where codes are concatenated: a suffix must start at the same level for
    every item.
    """
    codes = np.array(result.codes, dtype=np.int32, copy=True)
    sizes = list(result.vocab.level_sizes)
    labels = list(result.labels) if result.labels is not None else [None] * len(sizes)
    prefixes = list(result.vocab.prefixes)
    for level in range(codes.shape[1]):
        padded = codes[:, level] < 0
        if padded.any():
            codes[padded, level] = sizes[level]
            if labels[level] is not None:
                labels[level] = [*labels[level], PAD_LABEL]
            sizes[level] += 1
    if len(set(prefixes)) != len(prefixes):  # shared tables cannot grow per level
        prefixes = None
    return FitResult(
        codes=codes,
        vocab=CodeVocab(sizes, prefixes),
        collisions_resolved=result.collisions_resolved,
        state=result.state,
        info=result.info,
        labels=labels,
    )


def _check_matrix(scheme: str, name: str, value: Any, n_items: int) -> np.ndarray | None:
    if value is None:
        return None
    array = np.asarray(value)
    if array.ndim != 2:
        raise DataError(f"{scheme}: {name} must be a 2-d array (n_items, dim), got shape {array.shape}")
    if array.shape[0] != n_items:
        raise DataError(
            f"{scheme}: {name} has {array.shape[0]} rows but there are {n_items} items; "
            "rows must align with the dataset's item order"
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise DataError(f"{scheme}: {name} must be floating point, got dtype {array.dtype}")
    finite = np.isfinite(array)
    if not finite.all():
        row = int(np.nonzero(~finite.all(axis=1))[0][0])
        raise DataError(f"{scheme}: {name} row {row} holds NaN or infinite values")
    return np.ascontiguousarray(array, dtype=np.float32)
