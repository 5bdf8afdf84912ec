"""Building blocks shared by the learned quantizers (rqkmeans, rqvae, usm, letter).

- :mod:`semid.quantize.kmeans`: seeded k-means (faiss) and balanced k-means.
- :mod:`semid.quantize.residual`: residual k-means codebooks and nearest-code encoding.
- :mod:`semid.quantize.sinkhorn`: log-domain Sinkhorn-Knopp uniform assignment.
- :mod:`semid.quantize.rqvae_model`: the RQ-VAE network (torch).
- :mod:`semid.quantize.trainer`: the RQ-VAE training loop with extension hooks.

Only :mod:`kmeans`, :mod:`residual` and :mod:`sinkhorn` are imported here;
the torch modules load when a scheme fits.
"""

from __future__ import annotations

from .kmeans import kmeans
from .residual import fit_residual_codebooks, residual_encode

__all__ = ["fit_residual_codebooks", "kmeans", "residual_encode"]
