"""Sinkhorn-Knopp uniform assignment (LC-Rec's uniform semantic mapping).

Given distances ``D (n, K)`` from ``n`` points to ``K`` codes, find the
transport plan ``Q`` closest to ``exp(-D / eps)`` whose rows sum to ``1/n``
and columns to ``1/K`` (every code gets an equal share of the points), then
assign each point to ``argmax_k Q[i, k]``.

With eps ~0.003 the kernel ``exp(-D / eps)`` under- and overflows float32
(distances are first scaled to [-1, 1], so exponents reach +-333); the
iterations therefore run on ``log Q`` with log-sum-exp normalisations, which
stay finite for any eps > 0.
"""

from __future__ import annotations

import torch

__all__ = ["scale_distances", "sinkhorn_assign", "sinkhorn_log"]


def scale_distances(distances: torch.Tensor) -> torch.Tensor:
    """Affinely map ``distances`` to [-1, 1] so ``eps`` means the same at any scale."""
    high, low = distances.max(), distances.min()
    middle = (high + low) / 2
    half_range = (high - low) / 2 + 1e-5
    return (distances - middle) / half_range


def sinkhorn_log(distances: torch.Tensor, epsilon: float = 0.003, n_iter: int = 50) -> torch.Tensor:
    """Log of the balanced transport plan for ``float (n, K)`` distances; returns ``(n, K)``."""
    n, k = distances.shape
    log_q = -scale_distances(distances.double()) / epsilon
    log_row = -torch.log(torch.tensor(float(n), dtype=torch.float64))
    log_col = -torch.log(torch.tensor(float(k), dtype=torch.float64))
    for _ in range(n_iter):
        # Columns (codes) each carry 1/K of the mass, rows (points) 1/n.
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) + log_col
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) + log_row
    return log_q


def sinkhorn_assign(distances: torch.Tensor, epsilon: float = 0.003, n_iter: int = 50) -> torch.Tensor:
    """Code index per point under the uniform plan: ``int64 (n,)``."""
    return sinkhorn_log(distances, epsilon, n_iter).argmax(dim=1)
