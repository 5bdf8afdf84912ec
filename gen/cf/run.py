"""The run directory of a CF model (SASRec, LightGCN), and loading a trained model from it.

CF runs use the run format every semid trainer shares (:mod:`semid.gen.runs`)::

    RUN/
      run.json             model_type (sasrec | lightgcn), config {model, seed,
                           options}, the dataset's identity (path, fingerprints of
                           its items and training split), library versions
      train_log.jsonl      start / epoch / valid / stop events
      item_ids.txt         dataset item order (row i of every item array)
      graph.safetensors    LightGCN only: training (user, item) pairs
      user_ids.txt         LightGCN only: user order of the graph
      checkpoints/best/    model.safetensors: weights with the best validation NDCG@10
      checkpoints/last/    model.safetensors + training.pt (optimizer, RNG states)

Checkpoints carry a sha256 manifest and are written atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from semid.errors import ArtifactError

from ..runs import RunDirectory, open_run
from .models import GRAPH_MODELS, MODELS, build_config, build_model

__all__ = [
    "check_dataset",
    "load_run",
    "open_cf_run",
    "read_config",
    "replace_file",
]


def replace_file(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then atomically rename the temporary file onto ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_cf_run(run: str | os.PathLike[str]) -> RunDirectory:
    """Open a CF run directory.

    Raises:
        ArtifactError: not a semid run, or a run of another model type.
    """
    opened = open_run(run)
    if opened.model_type not in MODELS:
        raise ArtifactError(
            f"{run} is a {opened.model_type!r} run, not a CF run ({', '.join(sorted(MODELS))}); "
            "use `semid evaluate` for it"
        )
    return opened


def read_config(run: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"model", "config", "seed", "options", "protocol", "dataset"}`` of a CF run (from ``run.json``).

    ``protocol`` is the stored split (see :class:`semid.gen.cf.protocol.SplitProtocol`);
    ``{}`` for runs written before protocols existed (leave-one-out).

    Raises:
        ArtifactError: not a CF run directory, malformed, or of a newer format.
    """
    opened = open_cf_run(run)
    stored = opened.config
    return {
        "model": opened.model_type,
        "config": dict(stored.get("model", {})),
        "seed": int(stored.get("seed", 0)),
        "options": dict(stored.get("options", {})),
        "protocol": dict(stored.get("protocol") or {}),
        "dataset": dict(opened.meta.get("dataset") or {}),
    }


def check_dataset(run: str | os.PathLike[str], dataset, *, training: bool) -> None:
    """Refuse a dataset other than the one the run was trained on.

    Items must match always (the score columns are items). With ``training``
    (resume) or for LightGCN (whose users are graph nodes), the training split
    must match too.

    Raises:
        DataError: naming the run and both datasets.
    """
    opened = open_cf_run(run)
    opened.check_dataset(dataset, training=training or opened.model_type in GRAPH_MODELS)


def read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise ArtifactError(f"{path} is missing; the run directory is incomplete")
    return path.read_text(encoding="utf-8").splitlines()


def load_run(run: str | os.PathLike[str], *, weights: str = "best"):
    """Rebuild the trained model of a run.

    Args:
        weights: ``"best"`` (``model.safetensors``, the best validation epoch) or
            ``"last"`` (the checkpoint's current weights).

    Returns:
        ``(model, config, item_ids, user_ids)``; ``config`` as :func:`read_config`;
        the model is in eval mode.

    Raises:
        ArtifactError: missing or unreadable files.
    """
    run = Path(run)
    config = read_config(run)
    opened = open_cf_run(run)
    item_ids = read_lines(run / "item_ids.txt")
    if len(item_ids) != config["dataset"]["n_items"]:
        raise ArtifactError(f"{run}/item_ids.txt has {len(item_ids)} ids, config.json says {config['dataset']['n_items']}")
    name = config["model"]
    user_ids = read_lines(run / "user_ids.txt") if name in GRAPH_MODELS else []
    model_config = build_config(name, config["config"])
    model = build_model(name, len(item_ids), len(user_ids), model_config)
    if weights not in ("best", "last"):
        raise ArtifactError(f"weights must be 'best' or 'last', got {weights!r}")
    if not opened.has_checkpoint(weights):
        raise ArtifactError(f"{run} has no {weights!r} checkpoint yet: training has not finished an epoch; "
                            "continue it with `semid cf train ... --resume`")
    directory, _ = opened.load_checkpoint(weights)
    state = load_file(directory / "model.safetensors")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ArtifactError(f"{run}: weights do not match the recorded config: {str(exc).splitlines()[0]}") from None
    if name in GRAPH_MODELS:
        graph = load_file(run / "graph.safetensors")
        model.attach_pairs(graph["users"].numpy(), graph["items"].numpy())
    model.eval()
    return model, config, item_ids, user_ids
