"""Shared by the learned-scheme tests: clustered toy embeddings and a one-thread fixture."""

from __future__ import annotations

import numpy as np
import pytest

from semid.data import ItemTable


def clustered(n: int = 200, dim: int = 24, clusters: int = 10, seed: int = 0) -> tuple[ItemTable, np.ndarray]:
    """``n`` items with ``float32 (n, dim)`` embeddings drawn around ``clusters`` centres."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)) * 3
    x = centers[rng.integers(0, clusters, n)] + rng.normal(size=(n, dim))
    return ItemTable({"item_id": f"it{i}"} for i in range(n)), x.astype(np.float32)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models: one intra-op thread avoids thread-sync overhead on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
