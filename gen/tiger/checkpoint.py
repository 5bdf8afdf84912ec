"""Saving and loading TIGER weights and training state inside a run directory.

A checkpoint (see :mod:`semid.gen.runs`) holds ``model.safetensors`` (weights;
tied embeddings stored once), ``t5_config.json`` (the transformers config, so
a model can be rebuilt without the training config), and for ``last`` also
``training.pt`` (optimizer, scheduler and RNG states, see
:mod:`semid.gen.training.torch_state`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from semid.errors import ArtifactError

from ..runs import RunDirectory, Writer
from .model import TigerT5

__all__ = ["load_model", "model_writers"]


def model_writers(model: TigerT5) -> dict[str, Writer]:
    """Checkpoint writers of a TIGER model: weights and the transformers config that rebuilds it."""
    from safetensors.torch import save_model

    return {
        "model.safetensors": lambda path: save_model(model, str(path)),
        "t5_config.json": lambda path: path.write_text(model.config.to_json_string(), encoding="utf-8"),
    }


def load_model(run: RunDirectory, name: str = "best", *, device: str = "cpu") -> tuple[TigerT5, dict[str, Any]]:
    """``(model in eval mode, checkpoint state)``; checksums are verified first.

    Raises:
        ArtifactError: missing or corrupted checkpoint, or weights that do not fit
            the stored config.
    """
    from safetensors.torch import load_model as load_weights
    from transformers import T5Config

    directory, state = run.load_checkpoint(name)
    try:
        config = T5Config.from_dict(json.loads((directory / "t5_config.json").read_text(encoding="utf-8")))
        model = TigerT5(config)
        load_weights(model, str(directory / "model.safetensors"), device=device)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ArtifactError(f"cannot load TIGER weights from {directory}: {exc}") from None
    return model.to(device).eval(), state
