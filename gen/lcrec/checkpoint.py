"""Resumable LC-Rec checkpoints inside a run directory, without pickle.

A checkpoint (``checkpoints/last`` of :mod:`semid.gen.runs`) holds:

- ``trainable.safetensors``: every parameter with ``requires_grad`` (LoRA
  matrices and code-token rows, or the whole model under full tuning), by name;
- ``optimizer.safetensors``: AdamW moments per parameter, keyed ``"{i}.{field}"``;
- ``rng.safetensors``: the torch CPU random state (dropout masks);
- ``state.json``: progress (epoch, batch, step, elapsed seconds) and the
  optimizer's hyper-parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["load_training_state", "save_training_state"]

CHECKPOINT = "last"


def _trainable(model) -> dict[str, Any]:
    return {name: p.detach().contiguous().clone() for name, p in model.named_parameters() if p.requires_grad}


def save_training_state(run, model, optimizer, progress: dict[str, Any]) -> Path:
    """Write ``checkpoints/last`` atomically (``model`` unwrapped from DDP)."""
    import torch
    from safetensors.torch import save_file

    weights = _trainable(model)
    moments: dict[str, torch.Tensor] = {}
    for i, param in enumerate(p for group in optimizer.param_groups for p in group["params"]):
        for key, value in optimizer.state.get(param, {}).items():
            if torch.is_tensor(value):
                moments[f"{i}.{key}"] = value.detach().contiguous().clone().reshape(value.shape or (1,))
    groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    rng = {"cpu": torch.get_rng_state()}
    writers = {
        "trainable.safetensors": lambda path: save_file(weights, str(path)),
        "optimizer.safetensors": lambda path: save_file(moments or {"empty": torch.zeros(1)}, str(path)),
        "rng.safetensors": lambda path: save_file(rng, str(path)),
    }
    state = {**progress, "optimizer_groups": _jsonable(groups)}
    return run.save_checkpoint(CHECKPOINT, writers, state)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return float(value)


def load_training_state(run, model, optimizer) -> dict[str, Any] | None:
    """Restore weights, optimizer and RNG from ``checkpoints/last``; return the progress.

    Returns ``None`` when the run has no checkpoint yet.

    Raises:
        ArtifactError: a corrupted checkpoint (checksum mismatch) or one whose
            parameters do not match the model.
    """
    import torch
    from safetensors.torch import load_file

    from semid.errors import ArtifactError

    if not run.has_checkpoint(CHECKPOINT):
        return None
    directory, state = run.load_checkpoint(CHECKPOINT)
    weights = load_file(str(directory / "trainable.safetensors"))
    expected = {name for name, p in model.named_parameters() if p.requires_grad}
    if set(weights) != expected:
        missing = sorted(expected - set(weights))[:3]
        raise ArtifactError(
            f"{directory}: checkpoint parameters do not match the model (e.g. missing {missing}); "
            "was it written with other settings?"
        )
    with torch.no_grad():
        params = dict(model.named_parameters())
        for name, value in weights.items():
            params[name].copy_(value)
    moments = load_file(str(directory / "optimizer.safetensors"))
    ordered = [p for group in optimizer.param_groups for p in group["params"]]
    for key, value in moments.items():
        if key == "empty":
            continue
        i, field = key.split(".", 1)
        param = ordered[int(i)]
        optimizer.state.setdefault(param, {})[field] = value.reshape(()) if field == "step" else value
    for group, saved in zip(optimizer.param_groups, state.get("optimizer_groups", [])):
        for k, v in saved.items():
            group[k] = tuple(v) if isinstance(v, list) else v
    torch.set_rng_state(load_file(str(directory / "rng.safetensors"))["cpu"])
    return state
