"""Declared tokenizer parameters: names, types, defaults and checks.

Each scheme lists its parameters as :class:`Param` objects. Construction rejects
unknown names (listing the valid ones); ``fit`` validates values. The CLI's
``--set key=value`` strings are converted with :meth:`Param.parse`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ParameterError

__all__ = ["Param", "parse_assignments"]


@dataclass(frozen=True)
class Param:
    """One keyword parameter of a scheme.

    Args:
        name: keyword name.
        default: default value (its type is the parameter's type unless ``kind``).
        help: one line for ``semid list-schemes``.
        check: returns an error fragment ("must be >= 2") or None when valid.
        choices: allowed values, for string parameters.
        kind: explicit type (``int``, ``float``, ``str``, ``bool``, ``dict``, ``list``).
    """

    name: str
    default: Any
    help: str = ""
    check: Callable[[Any], str | None] | None = None
    choices: tuple[Any, ...] | None = None
    kind: type | None = None

    @property
    def type(self) -> type:
        if self.kind is not None:
            return self.kind
        return type(self.default) if self.default is not None else str

    def validate(self, scheme: str, value: Any, *, noun: str = "parameter") -> Any:
        """Return ``value`` coerced to the parameter's type or raise ParameterError.

        ``None`` is accepted when the default is ``None`` (an optional setting).
        """
        expected = self.type
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if value is None and self.default is None:
            return None
        if expected is not Any and not (isinstance(value, expected) and not (expected is int and isinstance(value, bool))):
            raise ParameterError(
                f"{scheme}: {noun} {self.name!r} must be {expected.__name__}, got {value!r}"
            )
        if self.choices is not None and value not in self.choices:
            raise ParameterError(
                f"{scheme}: {noun} {self.name!r} must be one of {list(self.choices)}, got {value!r}"
            )
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise ParameterError(f"{scheme}: {noun} {self.name!r} {problem}, got {value!r}")
        return value

    def parse(self, scheme: str, text: str, *, noun: str = "parameter") -> Any:
        """Convert a command-line string to the parameter's type (``none`` = None for optional ones)."""
        expected = self.type
        if self.default is None and text.strip().lower() in {"none", "null", ""}:
            return None
        try:
            if expected is tuple:
                return tuple(part.strip() for part in text.split(",") if part.strip())
            if expected is bool:
                lowered = text.strip().lower()
                if lowered in {"1", "true", "yes", "on"}:
                    return True
                if lowered in {"0", "false", "no", "off"}:
                    return False
                raise ValueError(text)
            if expected in (int, float):
                return expected(text)
            if expected in (dict, list):
                return json.loads(text)
            return text
        except ValueError:
            raise ParameterError(
                f"{scheme}: {noun} {self.name!r} must be {expected.__name__}, got {text!r}"
            ) from None


def at_least(low: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= low else f"must be >= {low}"


def above(low: float) -> Callable[[Any], str | None]:
    return lambda v: None if v > low else f"must be > {low}"


def in_range(low: float, high: float) -> Callable[[Any], str | None]:
    return lambda v: None if low <= v <= high else f"must be in [{low}, {high}]"


def in_half_open(low: float, high: float) -> Callable[[Any], str | None]:
    return lambda v: None if low <= v < high else f"must be in [{low}, {high})"


def parse_assignments(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["a=1", "b.c=x"]`` -> ``{"a": "1", "b.c": "x"}``; raises on a missing ``=``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"expected key=value, got {pair!r}")
        out[key.strip()] = value
    return out


def describe_settable(cls) -> list[dict[str, Any]]:
    """A scheme's parameters named as ``--set`` takes them.

    A hybrid ``A+B`` takes ``seed`` and each part's parameters as
    ``prefix.NAME`` / ``suffix.NAME``, so those are listed, not the two dicts.
    """
    prefix, suffix = getattr(cls, "prefix_scheme", ""), getattr(cls, "suffix_scheme", "")
    if not (prefix and suffix):
        return describe(cls.params)
    from .registry import scheme_class

    out = [entry for entry in describe(cls.params) if entry["name"] not in {"prefix", "suffix"}]
    for part, scheme in (("prefix", prefix), ("suffix", suffix)):
        for entry in describe(scheme_class(scheme).params):
            if entry["name"] != "seed":
                out.append({**entry, "name": f"{part}.{entry['name']}", "help": f"{scheme}: {entry['help']}"})
    return out


def describe(params: Mapping[str, Param]) -> list[dict[str, Any]]:
    return [
        {"name": p.name, "default": p.default, "help": p.help, **({"choices": list(p.choices)} if p.choices else {})}
        for p in params.values()
    ]
