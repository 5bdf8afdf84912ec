"""The CF model registry and typed ``--set key=value`` handling for model configs."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from semid.errors import ParameterError

from .lightgcn import LightGCN
from .sasrec import SASRec

__all__ = ["MODELS", "build_config", "build_model", "model_class"]

#: Model name -> class. Each class has ``config_class``, ``training_batches``,
#: ``loss``, ``score`` and ``item_vectors``.
MODELS: dict[str, type] = {"lightgcn": LightGCN, "sasrec": SASRec}

_CHECKS = {
    "hidden": (1, None), "n_blocks": (1, None), "n_heads": (1, None), "max_len": (1, None),
    "n_layers": (0, None), "batch_size": (1, None), "dropout": (0.0, 0.99), "lr": (1e-12, None),
    "weight_decay": (0.0, None), "l2": (0.0, None),
}
_CHOICES = {"loss": ("bce", "ce")}


def model_class(name: str) -> type:
    try:
        return MODELS[name]
    except KeyError:
        raise ParameterError(f"unknown CF model {name!r}; valid models: {', '.join(sorted(MODELS))}") from None


def _coerce(model: str, field: dataclasses.Field, value: Any) -> Any:
    kind = type(field.default)
    if isinstance(value, str):
        try:
            value = kind(value)
        except ValueError:
            raise ParameterError(f"{model}: setting {field.name!r} expects {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ParameterError(f"{model}: setting {field.name!r} expects {kind.__name__}, got {value!r}")
    low, high = _CHECKS.get(field.name, (None, None))
    if (low is not None and value < low) or (high is not None and value > high):
        raise ParameterError(f"{model}: setting {field.name!r} must be in [{low}, {high or 'inf'}], got {value!r}")
    if field.name in _CHOICES and value not in _CHOICES[field.name]:
        raise ParameterError(f"{model}: setting {field.name!r} must be one of {list(_CHOICES[field.name])}, got {value!r}")
    return value


def build_config(name: str, overrides: Mapping[str, Any] | None = None):
    """The model's config dataclass with ``overrides`` applied (strings are converted).

    Raises:
        ParameterError: an unknown key (valid keys are listed) or a bad value.
    """
    cls = model_class(name)
    fields = {f.name: f for f in dataclasses.fields(cls.config_class)}
    values = {}
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise ParameterError(f"{name}: unknown setting {key!r}; valid settings: {', '.join(sorted(fields))}")
        values[key] = _coerce(name, fields[key], value)
    config = cls.config_class(**values)
    if name == "sasrec" and config.hidden % config.n_heads:
        raise ParameterError(f"sasrec: hidden ({config.hidden}) must be divisible by n_heads ({config.n_heads})")
    return config


def build_model(name: str, n_items: int, n_users: int, config):
    """Instantiate model ``name`` for a catalogue of ``n_items`` and ``n_users`` users."""
    return model_class(name)(n_items, n_users, config)
