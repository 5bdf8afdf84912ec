"""Mixed precision for training: bfloat16 matrix products, float32 weights, optimizer state and loss.

``precision="bf16"`` runs the wrapped forward pass under :func:`torch.autocast`: matrix products
take bfloat16 inputs (on CPUs with AVX512-BF16 or AMX, and on GPUs, several times faster than
float32), while weights, gradients, optimizer state and reductions such as the cross-entropy stay
float32. On a CPU without native bfloat16 it is slower than float32; :func:`cpu_has_bf16` says
which case applies.
"""

from __future__ import annotations

import contextlib
import functools

from semid.errors import ParameterError

__all__ = ["PRECISIONS", "autocast", "cpu_has_bf16"]

#: The accepted values of every trainer's ``precision`` setting.
PRECISIONS = ("fp32", "bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 products natively (``avx512_bf16`` or AMX in ``/proc/cpuinfo``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(precision: str, device: str | object):
    """A context manager that runs its block in ``precision`` on ``device`` (``"cpu"``, ``"cuda:0"``, a torch device).

    Raises:
        ParameterError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    import torch

    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    kind = torch.device(device).type if not isinstance(device, torch.device) else device.type
    return torch.autocast(kind, dtype=torch.bfloat16)
