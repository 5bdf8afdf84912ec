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

__all__ = ["PRECISIONS", "autocast", "cpu_has_bf16", "keep_float32"]

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


def autocast(precision: str, device):
    """A context manager that runs its block in ``precision`` on ``device`` (``"cpu"``, ``"cuda:0"``, a torch device).

    Raises:
        ParameterError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    import torch

    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def keep_float32(module):
    """Make ``module`` (an output layer) compute in float32 even inside a bf16 :func:`autocast` block; returns it.

    Output logits are what a softmax compares: bfloat16 rounds a logit of 16-32 to steps of
    0.125-0.25, noise of the order of the differences the model learns. The parameters and
    their names are untouched (only this instance's ``forward`` is wrapped), so checkpoints
    load either way. Wrapping twice is a no-op.
    """
    import torch

    if getattr(module, "_semid_float32", False):
        return module
    inner = module.forward

    def forward(*args, **kwargs):
        args = [a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
        device = next(module.parameters()).device.type
        with torch.autocast(device, enabled=False):
            return inner(*args, **kwargs)

    module.forward = forward
    module._semid_float32 = True
    return module
