"""Optimizer, scheduler and random states in a checkpoint, without pickle on load.

``training.pt`` holds plain dicts of tensors and numbers (``optimizer.state_dict()``,
``scheduler.state_dict()``, RNG states); it is read back with
``torch.load(weights_only=True)``, which refuses arbitrary objects.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from semid.errors import ArtifactError

__all__ = ["TRAINING_FILE", "load_torch_state", "torch_state_writer"]

TRAINING_FILE = "training.pt"


def torch_state_writer(state: Callable[[], dict[str, Any]]) -> Callable[[Path], None]:
    """A checkpoint writer that saves ``state()`` (called at write time) with ``torch.save``."""

    def write(path: Path) -> None:
        import torch

        torch.save(state(), path)

    return write


def load_torch_state(path: str | Path) -> dict[str, Any]:
    """Read a file written by :func:`torch_state_writer`.

    Raises:
        ArtifactError: the file is missing or unreadable (the message names it).
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"checkpoint file {path} is missing")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise ArtifactError(f"{path} is unreadable ({type(exc).__name__}: {exc})") from None
