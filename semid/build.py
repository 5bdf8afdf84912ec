"""Building an index from a dataset with the leave-one-out protection built in."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from .data.dataset import Dataset
from .registry import make
from .tokenizer import ItemTokenizer

__all__ = ["build_index"]

logger = logging.getLogger(__name__)


def build_index(
    scheme: str,
    dataset: Dataset,
    *,
    params: dict[str, Any] | None = None,
    embeddings: np.ndarray | None = None,
    cf_embeddings: np.ndarray | None = None,
) -> ItemTokenizer:
    """Fit ``scheme`` on ``dataset``'s items and *training* sequences.

    Training sequences come from :func:`semid.evaluation.leave_one_out` (each
    user's sequence without its validation and test items), so no scheme can
    see held-out interactions. The fit time is stored in ``info["fit_seconds"]``
    only in the returned object's log, not in the artifact (which must be
    byte-identical across runs).
    """
    from semid.evaluation.split import leave_one_out

    split = leave_one_out(dataset)
    tokenizer = make(scheme, **(params or {}))
    started = time.perf_counter()
    tokenizer.fit(dataset.items, split.train_sequences, embeddings=embeddings, cf_embeddings=cf_embeddings)
    logger.info("built %s index on %s in %.2f s", scheme, dataset.name, time.perf_counter() - started)
    return tokenizer
