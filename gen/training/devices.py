"""Checking a device name before any model is built, with one clear message."""

from __future__ import annotations

from semid.errors import ParameterError

__all__ = ["check_device"]


def check_device(name: str) -> str:
    """Return ``name`` when torch can use it here.

    Raises:
        ParameterError: an unknown device name (``banana``), or ``cuda`` / ``mps``
            on a machine that has none.
    """
    import torch

    try:
        device = torch.device(str(name))
    except (RuntimeError, ValueError):
        raise ParameterError(f"unknown device {name!r}; expected cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError(f"device {name!r} asked for, but torch sees no CUDA GPU here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ParameterError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ParameterError(f"device {name!r} asked for, but MPS is not available here; use --device cpu")
    elif device.type not in {"cpu", "cuda", "mps"}:
        raise ParameterError(f"device {name!r} is not supported by semid; expected cpu, cuda, cuda:N or mps")
    return str(name)
