"""Wrap a trained CF model as a :class:`semid.evaluation.Recommender` (full ranking)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .data import histories_to_indexes

__all__ = ["CFRecommender"]


class CFRecommender:
    """Rank every item for a batch of histories with one matmul.

    Args:
        model: a CF model (``score(histories, users) -> (B, n_items)``).
        item_ids: dataset item order (column i of the scores is ``item_ids[i]``).
        user_ids: user order the model was trained with (LightGCN); unknown users map to -1.
        max_len: history positions given to the model.
    """

    def __init__(self, model, item_ids: Sequence[str], user_ids: Sequence[str], *, max_len: int = 50):
        self.model = model
        self.item_ids = list(item_ids)
        self.item_index = {item: i + 1 for i, item in enumerate(self.item_ids)}
        self.user_index = {user: u for u, user in enumerate(user_ids)}
        self.max_len = max_len

    def evaluation_settings(self) -> dict:
        """How this model ranks (recorded by :func:`semid.evaluation.evaluate`)."""
        return {"ranking": "scores of every item", "max_history": self.max_len}

    def recommend(
        self,
        histories: Sequence[Sequence[str]],
        k: int,
        *,
        exclude: Sequence[set[str]] | None = None,
        users: Sequence[str] | None = None,
    ) -> list[list[str | None]]:
        """Top ``k`` item ids per history, best first; ``exclude[b]`` items are never returned."""
        if not histories:
            return []
        seq = torch.from_numpy(histories_to_indexes(histories, self.item_index, self.max_len))
        user_tensor = None
        if users is not None:
            user_tensor = torch.tensor([self.user_index.get(u, -1) for u in users], dtype=torch.long)
        self.model.eval()
        with torch.no_grad():
            scores = self.model.score(seq, user_tensor)
            if exclude is not None:
                rows, cols = [], []
                for b, items in enumerate(exclude):
                    for item in items:
                        column = self.item_index.get(item)
                        if column is not None:
                            rows.append(b)
                            cols.append(column - 1)
                if rows:
                    scores[torch.tensor(rows), torch.tensor(cols)] = float("-inf")
            k_eff = min(k, scores.shape[1])
            values, top = torch.topk(scores, k_eff, dim=1)
        top_np = top.numpy()
        finite = torch.isfinite(values).numpy()
        ids = np.asarray(self.item_ids, dtype=object)
        # An excluded (-inf) slot means fewer than k candidates remain: the list is shorter.
        return [list(ids[row[ok]]) for row, ok in zip(top_np, finite)]
