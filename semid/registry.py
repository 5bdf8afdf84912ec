"""The closed registry of schemes: ``make``, ``load``, ``available_schemes``.

Artifacts name a scheme by its registry key, never by an importable class
path. ``"A+B"`` composes any prefix scheme ``A`` with any suffix scheme ``B``
(see :mod:`semid.schemes.hybrid`).
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

from .errors import ParameterError

__all__ = ["available_schemes", "load", "make", "register", "scheme_class"]

_REGISTRY: dict[str, type] = {}
T = TypeVar("T", bound=type)

#: Hybrids studied in "How to Index Item IDs"; any other "A+B" works too.
NAMED_HYBRIDS = ("category+collaborative", "category+independent", "collaborative+independent")


def register(cls: T) -> T:
    """Class decorator adding a tokenizer class under its ``scheme`` name."""
    name = cls.scheme  # type: ignore[attr-defined]
    if not name or "+" in name:
        raise ValueError(f"invalid scheme name {name!r}")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"scheme {name!r} registered twice")
    _REGISTRY[name] = cls
    return cls


def _ensure_loaded() -> None:
    from . import schemes  # noqa: F401  (registers every built-in scheme)


def available_schemes() -> list[str]:
    """Sorted names accepted by :func:`make`: base schemes plus the named hybrids."""
    _ensure_loaded()
    return sorted([*_REGISTRY, *NAMED_HYBRIDS])


def scheme_class(name: str) -> type:
    """The class registered for ``name`` (hybrids resolve to the hybrid class)."""
    _ensure_loaded()
    if "+" in name:
        from .schemes.hybrid import HybridTokenizer

        prefix, _, suffix = name.partition("+")
        for part in (prefix, suffix):
            scheme_class(part)
        return HybridTokenizer.for_parts(prefix, suffix)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParameterError(
            f"unknown scheme {name!r}; valid schemes are: {', '.join(available_schemes())} "
            "(or any 'prefix+suffix' combination)"
        ) from None


def make(scheme: str, **params: Any):
    """Create an unfitted tokenizer: ``semid.make("rqvae", n_levels=3)``."""
    return scheme_class(scheme)(**params)


def load(path: str | os.PathLike[str]):
    """Load a fitted tokenizer from an index directory (checksums verified)."""
    from .artifact import load_index

    return load_index(path)
