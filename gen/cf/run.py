"""The run directory of a CF training job, and loading a trained model from it.

Layout::

    RUN/
      config.json          format, model name and config, seed, training options,
                           dataset identity (name, item and training-data
                           fingerprints, counts), library versions
      item_ids.txt         dataset item order (row i of every item array)
      graph.safetensors    LightGCN only: training (user, item) pairs
      user_ids.txt         LightGCN only: user order of the graph
      checkpoint.safetensors  last finished epoch: model, optimizer, RNG and
                           best-so-far weights; progress JSON in its metadata
      metrics.jsonl        one line per finished epoch (loss, validation metrics, time)
      model.safetensors    the best weights by validation NDCG@10
      result.json          why training stopped, best epoch and validation metrics

Every file is written to a temporary name and renamed (``os.replace``), so a
crash leaves the previous complete version; the checkpoint is one file, so
weights, optimizer and progress always agree.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, safe_open, save_file

from semid._io import write_json
from semid.errors import ArtifactError, DataError

from .data import CFData
from .models import build_config, build_model

__all__ = [
    "RUN_FORMAT",
    "RUN_FORMAT_VERSION",
    "check_dataset",
    "load_run",
    "read_config",
    "replace_file",
]

RUN_FORMAT = "semid-cf-run"
RUN_FORMAT_VERSION = 1


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


def write_json_atomic(path: Path, obj: Any) -> None:
    replace_file(path, lambda tmp: write_json(tmp, obj))


def write_lines_atomic(path: Path, lines: list[str]) -> None:
    replace_file(path, lambda tmp: tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8"))


def read_config(run: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``RUN/config.json``.

    Raises:
        ArtifactError: not a run directory, malformed, or of a newer format.
    """
    path = Path(run) / "config.json"
    if not path.exists():
        raise ArtifactError(f"{run} is not a CF run directory: {path.name} is missing (create one with `semid cf train`)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    if config.get("format") != RUN_FORMAT:
        raise ArtifactError(f"{path}: field 'format' is {config.get('format')!r}, expected {RUN_FORMAT!r}")
    version = config.get("format_version")
    if not isinstance(version, int) or version > RUN_FORMAT_VERSION:
        raise ArtifactError(f"{path}: run format_version {version!r} is newer than supported ({RUN_FORMAT_VERSION}); upgrade semid")
    return config


def check_dataset(config: dict[str, Any], data: CFData, run: str | os.PathLike[str], *, training: bool) -> None:
    """Refuse a dataset other than the one the run was trained on.

    Items must match always (the score columns are items). With ``training``
    (resume) or for LightGCN (whose users are graph nodes), the training data
    must match too.

    Raises:
        DataError: naming the run, the field and both fingerprints.
    """
    recorded = config["dataset"]
    if recorded["items_fingerprint"] != data.items_fingerprint:
        raise DataError(
            f"{run}: dataset mismatch: the run was trained on items with fingerprint "
            f"{recorded['items_fingerprint'][:16]}... ({recorded['n_items']} items), this dataset has "
            f"{data.items_fingerprint[:16]}... ({data.n_items} items); use the dataset the run was trained on"
        )
    if (training or config["model"] == "lightgcn") and recorded["train_fingerprint"] != data.train_fingerprint:
        raise DataError(
            f"{run}: dataset mismatch: same items but different training interactions "
            f"(fingerprint {recorded['train_fingerprint'][:16]}... expected, got {data.train_fingerprint[:16]}...)"
        )


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
        ``(model, config, item_ids, user_ids)``; the model is in eval mode.

    Raises:
        ArtifactError: missing or unreadable files.
    """
    run = Path(run)
    config = read_config(run)
    item_ids = read_lines(run / "item_ids.txt")
    if len(item_ids) != config["dataset"]["n_items"]:
        raise ArtifactError(f"{run}/item_ids.txt has {len(item_ids)} ids, config.json says {config['dataset']['n_items']}")
    name = config["model"]
    user_ids = read_lines(run / "user_ids.txt") if name == "lightgcn" else []
    model_config = build_config(name, config["config"])
    model = build_model(name, len(item_ids), len(user_ids), model_config)
    if weights == "best":
        path = run / "model.safetensors"
        if not path.exists():
            raise ArtifactError(f"{path} is missing: the run has not finished an epoch yet (or use the checkpoint)")
        state = load_file(path)
    else:
        state = {k[len("model."):]: v for k, v in load_file(run / "checkpoint.safetensors").items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ArtifactError(f"{run}: weights do not match the recorded config: {str(exc).splitlines()[0]}") from None
    if name == "lightgcn":
        graph = load_file(run / "graph.safetensors")
        model.attach_pairs(graph["users"].numpy(), graph["items"].numpy())
    model.eval()
    return model, config, item_ids, user_ids


def save_graph(run: Path, users: np.ndarray, items: np.ndarray) -> None:
    tensors = {"users": torch.from_numpy(users.astype(np.int64)), "items": torch.from_numpy(items.astype(np.int64))}
    replace_file(run / "graph.safetensors", lambda tmp: save_file(tensors, str(tmp)))


def checkpoint_progress(path: Path) -> dict[str, Any]:
    """The progress JSON stored in a checkpoint's metadata."""
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    if "progress" not in meta:
        raise ArtifactError(f"{path}: checkpoint has no progress metadata; it is not a semid CF checkpoint")
    return json.loads(meta["progress"])
