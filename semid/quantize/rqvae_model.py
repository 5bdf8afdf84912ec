"""The RQ-VAE network of TIGER: MLP encoder, residual quantizer, MLP decoder.

Shapes: input ``x`` is ``float32 (B, in_dim)``; the latent ``z`` and its
quantization ``z_q`` are ``(B, code_dim)``; codes are ``int64 (B, L)``; the
codebooks are one parameter ``float32 (L, K, code_dim)``.

Loss (TIGER eq. 1, per level ``l`` with residual ``r_l``, ``r_0 = z``)::

    sum_l ||sg[r_l] - e_l||^2 + beta * ||r_l - sg[e_l]||^2   (+ reconstruction)

Residuals are formed with detached code vectors, so each commitment term
trains the encoder and each codebook term trains only its own level. The
decoder sees ``z_q`` through a straight-through estimator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .sinkhorn import sinkhorn_assign

__all__ = ["RQVAE", "QuantizeOutput", "mlp"]


def mlp(widths: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear layers ``widths[0] -> ... -> widths[-1]`` with ReLU between (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@dataclass
class QuantizeOutput:
    """Result of :meth:`RQVAE.quantize` for a batch of ``B`` latents.

    Attributes:
        z_q: ``(B, code_dim)`` straight-through quantized latent.
        codes: ``int64 (B, L)`` chosen code per level.
        residuals: ``(B, L, code_dim)`` input of each level (``r_0 = z``), detached.
        quant_loss: scalar, the summed codebook + commitment terms.
    """

    z_q: torch.Tensor
    codes: torch.Tensor
    residuals: torch.Tensor
    quant_loss: torch.Tensor


class RQVAE(nn.Module):
    """Encoder + residual vector quantizer + decoder.

    Args:
        in_dim: input embedding width.
        hidden: encoder hidden widths (the decoder mirrors them).
        code_dim: latent / codebook vector width.
        n_levels: number of residual levels ``L``.
        codebook_size: codes per level ``K``.
        beta: commitment weight.
        dropout: dropout before each linear layer (0 = none, as in TIGER).
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        code_dim: int,
        n_levels: int,
        codebook_size: int,
        *,
        beta: float = 0.25,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.beta = beta
        self.in_dim = in_dim
        self.encoder = mlp([in_dim, *hidden, code_dim], dropout)
        self.decoder = mlp([code_dim, *reversed(list(hidden)), in_dim], dropout)
        self.codebooks = nn.Parameter(torch.randn(n_levels, codebook_size, code_dim) * 0.01)
        # Per-dimension input standardisation (set from the catalogue before
        # training). Unit-length sentence embeddings have per-element variance
        # ~1/dim; without it the reconstruction term is ~1e-3 and the
        # quantization terms win, shrinking the latent space.
        self.register_buffer("input_mean", torch.zeros(in_dim))
        self.register_buffer("input_std", torch.ones(in_dim))

    def set_standardization(self, x: torch.Tensor) -> None:
        """Use the mean and standard deviation of ``x (n, in_dim)`` for inputs from now on."""
        self.input_mean.copy_(x.mean(0))
        self.input_std.copy_(x.std(0).clamp_min(1e-6))

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent ``(B, code_dim)`` of raw inputs ``(B, in_dim)``."""
        return self.encoder(self.standardize(x))

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """Reconstruction of raw inputs (standardisation undone) from latents."""
        return self.decoder(z_q) * self.input_std + self.input_mean

    @property
    def n_levels(self) -> int:
        return self.codebooks.shape[0]

    @property
    def codebook_size(self) -> int:
        return self.codebooks.shape[1]

    def level_distances(self, residual: torch.Tensor, level: int) -> torch.Tensor:
        """Squared L2 distances ``(B, K)`` from residuals ``(B, code_dim)`` to level ``level``'s codes."""
        book = self.codebooks[level]
        return (
            residual.pow(2).sum(1, keepdim=True)
            - 2 * residual @ book.t()
            + book.pow(2).sum(1)[None, :]
        )

    def quantize(
        self,
        z: torch.Tensor,
        *,
        sinkhorn_epsilons: Sequence[float] | None = None,
        sinkhorn_iters: int = 50,
    ) -> QuantizeOutput:
        """Residual-quantize latents ``z (B, code_dim)``.

        ``sinkhorn_epsilons[l] > 0`` replaces the nearest-code choice at level
        ``l`` by a Sinkhorn-Knopp uniform assignment over the batch (LC-Rec).
        """
        residual = z
        chosen, inputs, losses = [], [], []
        for level in range(self.n_levels):
            distances = self.level_distances(residual.detach(), level)
            eps = sinkhorn_epsilons[level] if sinkhorn_epsilons else 0.0
            if eps > 0:
                idx = sinkhorn_assign(distances.detach(), eps, sinkhorn_iters)
            else:
                idx = distances.argmin(dim=1)
            vectors = self.codebooks[level][idx]
            losses.append(F.mse_loss(vectors, residual.detach()) + self.beta * F.mse_loss(residual, vectors.detach()))
            inputs.append(residual.detach())
            chosen.append(idx)
            residual = residual - vectors.detach()
        quantized = z - residual  # sum of the (detached) chosen vectors, as a function of z
        z_q = z + (quantized - z).detach()
        return QuantizeOutput(
            z_q=z_q,
            codes=torch.stack(chosen, dim=1),
            residuals=torch.stack(inputs, dim=1),
            quant_loss=torch.stack(losses).sum(),
        )

    def forward(self, x: torch.Tensor, **quantize_kwargs) -> tuple[torch.Tensor, torch.Tensor, QuantizeOutput]:
        """Returns ``(reconstruction (B, in_dim), z (B, code_dim), quantize output)``.

        The reconstruction is in the *standardized* input space (compare it with
        :meth:`standardize` of ``x``); :meth:`decode` gives raw-space outputs.
        """
        z = self.encode(x)
        q = self.quantize(z, **quantize_kwargs)
        return self.decoder(q.z_q), z, q

    @torch.no_grad()
    def encode_codes(self, x: torch.Tensor, batch_size: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest-code codes ``int64 (n, L)`` and latents ``(n, code_dim)`` for ``x (n, in_dim)``."""
        codes, latents = [], []
        for start in range(0, x.shape[0], batch_size):
            z = self.encode(x[start:start + batch_size])
            codes.append(self.quantize(z).codes)
            latents.append(z)
        return torch.cat(codes), torch.cat(latents)
