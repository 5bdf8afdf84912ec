"""Checkpoint writers for LLM trainables that train only part of a model (LoRA, new token rows).

A trainable mixes :class:`TrainableStateMixin` in and keeps ``self.model``,
``self.optimizer`` and (if it schedules by step) ``self.step``; ``best`` and
``last`` then hold ``trainable.safetensors`` (every parameter with
``requires_grad``, by name: megabytes, not the base model) and ``last`` also the
optimizer, RNG and step (:mod:`semid.gen.training.torch_state`). A trainable
with extra modules (LLaRA's projector) overrides :meth:`trainable_parameters`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semid.errors import ArtifactError

from ..training.torch_state import TRAINING_FILE, load_torch_state, torch_state_writer

__all__ = ["TrainableStateMixin"]

WEIGHTS_FILE = "trainable.safetensors"


class TrainableStateMixin:
    """``weight_writers`` / ``training_writers`` / ``load_weights`` / ``restore`` for partial training."""

    model: Any
    optimizer: Any
    step: int = 0

    def trainable_parameters(self) -> dict[str, Any]:
        """The parameters a checkpoint stores, by stable name."""
        return {name: p for name, p in self.model.named_parameters() if p.requires_grad}

    def weight_writers(self):
        from safetensors.torch import save_file

        return {WEIGHTS_FILE: lambda path: save_file(
            {n: p.detach().contiguous().clone() for n, p in self.trainable_parameters().items()}, str(path))}

    def training_writers(self):
        import torch

        return {TRAINING_FILE: torch_state_writer(lambda: {
            "optimizer": self.optimizer.state_dict(), "rng": {"torch": torch.get_rng_state()},
            "step": int(getattr(self, "step", 0)), **self.extra_state(),
        })}

    def extra_state(self) -> dict[str, Any]:
        """More progress to keep in ``last`` (override; restored by :meth:`restore_extra`)."""
        return {}

    def restore_extra(self, training: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` saved (override)."""

    def load_weights(self, directory: Path) -> None:
        """Copy a checkpoint's trained parameters into the model.

        Raises:
            ArtifactError: the checkpoint's parameters are not the model's (other settings).
        """
        import torch
        from safetensors.torch import load_file

        params = self.trainable_parameters()
        weights = load_file(str(Path(directory) / WEIGHTS_FILE))
        if set(weights) != set(params):
            missing = sorted(set(params) - set(weights))[:3]
            raise ArtifactError(f"{directory}: checkpoint parameters do not match the model (e.g. missing "
                                f"{missing}); was it written with other settings?")
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value)

    def restore(self, directory: Path) -> None:
        import torch

        self.load_weights(directory)
        training = load_torch_state(Path(directory) / TRAINING_FILE)
        self.optimizer.load_state_dict(training["optimizer"])
        torch.set_rng_state(training["rng"]["torch"])
        self.step = int(training.get("step", 0))
        self.restore_extra(training)
