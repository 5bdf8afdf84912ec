"""LightGCN (He et al., SIGIR 2020): linear propagation on the user-item graph, BPR loss.

The graph holds one edge per unique (user, item) pair of the *training* part of
the leave-one-out split. With ``A`` the symmetric bipartite adjacency and ``D``
its degree matrix, ``A_hat = D^-1/2 A D^-1/2`` (a torch sparse matrix over
``n_users + n_items`` nodes). Layer ``k`` is ``E_k = A_hat E_{k-1}``; the final
embeddings average ``E_0 .. E_K`` (weights ``1 / (K + 1)``, as in the paper).

Training samples, per epoch, every training pair once with a uniformly drawn
negative item (never equal to the positive) and minimises BPR plus L2 on the
layer-0 embeddings of the batch.

For next-item evaluation LightGCN is a **non-sequential baseline**: it scores
items by the user's embedding and ignores the order of the history (so the
validation item, which is not in the graph, does not change the test-time
ranking). A user the graph does not know (or a call without ``users``) is
represented by the mean final embedding of the history items.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from semid.params import above, at_least
from semid.settings import Settings, setting

from .data import CFData

__all__ = ["LightGCN", "LightGCNConfig", "normalized_adjacency"]


@dataclass
class LightGCNConfig(Settings):
    """Hyper-parameters of :class:`LightGCN` (defaults follow the paper)."""

    owner = "lightgcn"

    hidden: int = setting(64, "embedding width", check=at_least(1))
    n_layers: int = setting(3, "propagation layers", check=at_least(0))
    lr: float = setting(1e-3, "Adam learning rate", check=above(0.0))
    l2: float = setting(1e-4, "L2 weight on the batch's layer-0 embeddings", check=at_least(0.0))
    batch_size: int = setting(2048, "(user, positive, negative) triples per step", check=at_least(1))


def normalized_adjacency(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> torch.Tensor:
    """``D^-1/2 A D^-1/2`` as a coalesced sparse ``float32 (N, N)`` tensor, ``N = n_users + n_items``.

    Args:
        users: ``int64 (E,)`` user indexes (0-based).
        items: ``int64 (E,)`` item indexes, 0-based (dataset rows).
    """
    n = n_users + n_items
    rows = np.concatenate([users, items + n_users])
    cols = np.concatenate([items + n_users, users])
    degree = np.bincount(rows, minlength=n).astype(np.float64)
    inv_sqrt = np.zeros(n)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    values = inv_sqrt[rows] * inv_sqrt[cols]
    index = torch.from_numpy(np.stack([rows, cols]))
    return torch.sparse_coo_tensor(index, torch.from_numpy(values).float(), (n, n), check_invariants=True).coalesce()


def mean_propagation(adjacency: torch.Tensor, layer: torch.Tensor, n_layers: int) -> torch.Tensor:
    """LightGCN's propagation: ``mean(E_0, A E_0, ..., A^K E_0)`` for node embeddings ``float (N, d)``."""
    total = layer
    for _ in range(n_layers):
        layer = torch.sparse.mm(adjacency, layer)
        total = total + layer
    return total / (n_layers + 1)


class LightGCN(nn.Module):
    """LightGCN over ``n_users`` users and ``n_items`` items (item index 1-based at the API)."""

    name = "lightgcn"
    config_class = LightGCNConfig

    def __init__(self, n_items: int, n_users: int, config: LightGCNConfig):
        super().__init__()
        self.config = config
        self.n_items = n_items
        self.n_users = n_users
        self.user_emb = nn.Embedding(n_users, config.hidden)
        self.item_emb = nn.Embedding(n_items, config.hidden)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        self.adjacency: torch.Tensor | None = None
        self._pairs: tuple[np.ndarray, np.ndarray] | None = None
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def attach_graph(self, data: CFData) -> None:
        """Build the normalized adjacency from ``data``'s training pairs (needed before use)."""
        users, items = data.interactions()
        self.attach_pairs(users, items - 1)

    def attach_pairs(self, users: np.ndarray, items: np.ndarray) -> None:
        """Build the graph from ``int64 (E,)`` user indexes and 0-based item indexes."""
        self._pairs = (users, items)
        self.adjacency = normalized_adjacency(users, items, self.n_users, self.n_items)
        self._cache = None

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final ``(users (n_users, d), items (n_items, d))`` embeddings: mean over layers 0..K."""
        if self.adjacency is None:
            raise RuntimeError("LightGCN.attach_graph() must be called before propagation")
        final = mean_propagation(self.adjacency, torch.cat([self.user_emb.weight, self.item_emb.weight]),
                                 self.config.n_layers)
        return final[: self.n_users], final[self.n_users:]

    def train(self, mode: bool = True) -> "LightGCN":
        if mode:
            self._cache = None  # weights will change; inference must propagate again
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._cache = None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def item_vectors(self) -> torch.Tensor:
        """Final item embeddings ``float32 (n_items, d)``, row i = dataset row i."""
        return self.propagate()[1]

    # -- training -----------------------------------------------------------------
    def training_batches(self, data: CFData, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Yield ``int64 (B, 3)`` batches of (user, positive item, negative item), 0-based."""
        if self._pairs is None:
            self.attach_graph(data)
        users, items = (torch.from_numpy(a) for a in self._pairs)
        order = torch.randperm(len(users), generator=generator)
        for start in range(0, len(users), self.config.batch_size):
            take = order[start:start + self.config.batch_size]
            positive = items[take]
            negative = torch.randint(0, self.n_items - 1, positive.shape, generator=generator)
            negative = negative + (negative >= positive).long()
            yield torch.stack([users[take], positive, negative], dim=1)

    def loss(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """BPR loss plus ``l2`` times the mean squared norm of the batch's layer-0 embeddings."""
        del generator
        user_final, item_final = self.propagate()
        u, p, n = batch[:, 0], batch[:, 1], batch[:, 2]
        pos = (user_final[u] * item_final[p]).sum(-1)
        neg = (user_final[u] * item_final[n]).sum(-1)
        bpr = F.softplus(neg - pos).mean()
        reg = (
            self.user_emb.weight[u].pow(2).sum() + self.item_emb.weight[p].pow(2).sum()
            + self.item_emb.weight[n].pow(2).sum()
        ) / (2 * len(batch))
        return bpr + self.config.l2 * reg

    # -- inference ----------------------------------------------------------------
    @torch.no_grad()
    def score(self, histories: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        """Scores ``float32 (B, n_items)``.

        Args:
            histories: ``int64 (B, L)`` left-padded 1-based item indexes (used only
                for users the graph does not know).
            users: ``int64 (B,)`` user indexes, ``-1`` for unknown; or None.
        """
        if self._cache is None or self.training:
            self._cache = self.propagate()
        user_final, item_final = self._cache
        padded = torch.cat([torch.zeros(1, item_final.shape[1]), item_final])  # row 0 = padding
        counts = (histories > 0).sum(1, keepdim=True).clamp(min=1)
        query = padded[histories].sum(1) / counts  # mean of the history's item embeddings
        if users is not None:
            known = users >= 0
            query[known] = user_final[users[known]]
        return query @ item_final.T
