"""Saving and loading TIGER weights and training state inside a run directory.

A checkpoint (see :mod:`semid.gen.runs`) holds ``model.safetensors`` (weights;
tied embeddings stored once), ``t5_config.json`` (the transformers config, so
a model can be rebuilt without the training config), and for ``last`` also
``optimizer.pt`` (optimizer, scheduler and RNG states, loaded with
``weights_only=True``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from semid.errors import ArtifactError

from ..runs import RunDirectory
from .model import TigerT5

__all__ = ["load_model", "load_training_state", "save_model_checkpoint"]


def save_model_checkpoint(
    run: RunDirectory,
    name: str,
    model: TigerT5,
    state: dict[str, Any],
    *,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint ``name`` (``"last"`` or ``"best"``) atomically.

    ``training`` (optimizer/scheduler state dicts, RNG states) is stored only
    when given, in ``optimizer.pt``.
    """
    from safetensors.torch import save_model

    writers = {
        "model.safetensors": lambda path: save_model(model, str(path)),
        "t5_config.json": lambda path: path.write_text(model.config.to_json_string(), encoding="utf-8"),
    }
    if training is not None:
        writers["optimizer.pt"] = lambda path: torch.save(training, path)
    return run.save_checkpoint(name, writers, state)


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


def load_training_state(run: RunDirectory) -> dict[str, Any]:
    """Optimizer, scheduler and RNG states of the ``last`` checkpoint (already verified)."""
    path = run.checkpoint_path("last") / "optimizer.pt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise ArtifactError(f"{path} is unreadable ({type(exc).__name__}: {exc})") from None
