"""The CF model registry; configs are :class:`semid.settings.Settings` (typed ``--set``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from semid.errors import ParameterError

from .alpharec import AlphaRec
from .lightgcn import LightGCN
from .rlmrec import RLMRec
from .sasrec import SASRec

__all__ = ["GRAPH_MODELS", "MODELS", "build_config", "build_model", "model_class"]

#: Model name -> class. Each class has ``config_class``, ``training_batches``,
#: ``loss``, ``score`` and ``item_vectors``.
MODELS: dict[str, type] = {"alpharec": AlphaRec, "lightgcn": LightGCN, "rlmrec": RLMRec, "sasrec": SASRec}
#: Models whose users are nodes of the training graph (user order and graph stored in the run).
GRAPH_MODELS = frozenset({"alpharec", "lightgcn", "rlmrec"})

def model_class(name: str) -> type:
    try:
        return MODELS[name]
    except KeyError:
        raise ParameterError(f"unknown CF model {name!r}; valid models: {', '.join(sorted(MODELS))}") from None


def build_config(name: str, overrides: Mapping[str, Any] | None = None):
    """The model's config with ``overrides`` applied (strings, from ``--set``, are parsed).

    Raises:
        ParameterError: an unknown key (valid keys are listed) or a bad value.
    """
    return model_class(name).config_class().with_assignments(dict(overrides or {}))


def build_model(name: str, n_items: int, n_users: int, config):
    """Instantiate model ``name`` for a catalogue of ``n_items`` and ``n_users`` users."""
    return model_class(name)(n_items, n_users, config)
