"""Export a run's item embeddings, aligned with the dataset item order.

The matrix is written with :func:`semid.embeddings.save_embeddings`, the one
embedding file format of semid, so schemes (LETTER's ``cf_embeddings``) read it
like any other embedding file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from semid.errors import ArtifactError

from .run import load_run, read_config

__all__ = ["export_item_embeddings", "item_embeddings"]


def item_embeddings(run: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """``(item_ids, float32 (n_items, d))`` of a run's best weights; row i is ``item_ids[i]``.

    SASRec: the input/output item embedding table. LightGCN: the final
    (layer-averaged) item embeddings.
    """
    model, _, item_ids, _ = load_run(run)
    with torch.no_grad():
        matrix = model.item_vectors().detach().cpu().numpy().astype(np.float32)
    return item_ids, np.ascontiguousarray(matrix)


def export_item_embeddings(run: str | os.PathLike[str], out: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a run's item embeddings to ``out`` with :func:`semid.embeddings.save_embeddings`.

    Raises:
        ArtifactError: ``out`` exists and ``overwrite`` is false, or the run is incomplete.
    """
    from semid.embeddings import save_embeddings

    out = Path(out)
    if out.exists() and not overwrite:
        raise ArtifactError(f"{out} already exists; pass --overwrite to replace it")
    config = read_config(run)
    item_ids, matrix = item_embeddings(run)
    meta = {
        "model": f"cf:{config['model']}",
        "cf_run": str(Path(run).resolve()),
        "cf_config": config["config"],
        "dataset": config["dataset"]["name"],
        "items_fingerprint": config["dataset"]["items_fingerprint"],
        "normalized": False,
    }
    return save_embeddings(out, item_ids, matrix, meta)
