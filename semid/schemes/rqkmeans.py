"""RQ-KMeans: residual k-means codebooks over item embeddings.

Level ``l`` runs k-means (faiss, or balanced k-means when ``balanced=True``)
on the residuals left by the previous levels; an item's semantic code is its
nearest centroid per level. Colliding items get TIGER's extra level. The
codebooks are stored in the index (``state.safetensors``, key ``codebooks``,
``float32 (L, K, d)``), so :meth:`encode_new` works after ``semid.load``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..collisions import count_collisions
from ..errors import DataError, ParameterError
from ..params import Param, at_least
from ..quantize.codes import DISAMBIGUATION_CHOICES, complete_cold_code, disambiguate, embedding_rows
from ..quantize.residual import fit_residual_codebooks, residual_decode, residual_encode
from ..registry import register
from ..tokenizer import Code, FitInputs, FitResult, ItemTokenizer

__all__ = ["RQKMeansTokenizer"]


@register
class RQKMeansTokenizer(ItemTokenizer):
    """Residual k-means semantic IDs (no neural network, seconds to fit)."""

    scheme = "rqkmeans"
    libraries = ("faiss",)
    requires = frozenset({"embeddings"})
    collision_policy = "TIGER: an extra level numbers items that share a semantic code"
    supports_cold_start = True
    description = "residual k-means over item embeddings (faiss; optionally balanced)"
    params: dict[str, Param] = {
        "n_levels": Param("n_levels", 3, "semantic levels L", at_least(1)),
        "codebook_size": Param("codebook_size", 256, "centroids per level K", at_least(2)),
        "balanced": Param("balanced", False, "balanced k-means (clusters capped at ceil(n/K); slow on big catalogues)"),
        "n_iter": Param("n_iter", 20, "k-means iterations per level", at_least(1)),
        "disambiguation": Param("disambiguation", "always", "extra level for every item or only colliding ones",
                                choices=DISAMBIGUATION_CHOICES),
        "seed": Param("seed", 0, "random seed"),
    }

    @classmethod
    def conformance_params(cls) -> dict[str, Any]:
        """Small and fast settings for tests."""
        return {"n_levels": 2, "codebook_size": 8, "n_iter": 5}

    def _fit(self, inputs: FitInputs) -> FitResult:
        p = self._params
        n = len(inputs.items)
        if n < p["codebook_size"]:
            raise ParameterError(
                f"{self.scheme}: codebook_size {p['codebook_size']} needs at least that many items, "
                f"got {n}; pass a smaller codebook_size (e.g. codebook_size={max(2, n // 4)})"
            )
        x = inputs.embeddings
        codebooks, semantic = fit_residual_codebooks(
            x, p["n_levels"], p["codebook_size"], n_iter=p["n_iter"], seed=self.seed, balanced=p["balanced"]
        )
        codes, vocab, resolved = disambiguate(semantic, [p["codebook_size"]] * p["n_levels"], p["disambiguation"])
        recon = residual_decode(semantic, codebooks)
        info = {
            "input_dim": int(x.shape[1]),
            "recon_mse": round(float(np.mean((recon - x) ** 2)), 6),
            "utilization": [round(len(np.unique(semantic[:, lv])) / p["codebook_size"], 4) for lv in range(p["n_levels"])],
            "collision_rate_before": round(count_collisions(semantic) / n, 5),
        }
        return FitResult(codes=codes, vocab=vocab, collisions_resolved=resolved,
                         state={"codebooks": codebooks}, info=info)

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        if "codebooks" not in state:
            raise ParameterError(f"{self.scheme}: the index state holds no 'codebooks'")

    def _embedding_matrix(self, embedding: Any) -> np.ndarray:
        return embedding_rows(self.scheme, embedding, int(self.state_["codebooks"].shape[2]))

    def semantic_codes(self, embeddings: np.ndarray) -> np.ndarray:
        """Nearest-centroid semantic codes ``int64 (n, L)`` of ``float (n, d)`` embeddings."""
        self._require_fitted()
        codes, _ = residual_encode(self._embedding_matrix(embeddings), self.state_["codebooks"])
        return codes

    def reconstruct(self, embeddings: np.ndarray) -> np.ndarray:
        """Sum of chosen centroids ``float32 (n, d)`` for ``embeddings``."""
        return residual_decode(self.semantic_codes(embeddings), self.state_["codebooks"])

    def encode_new(self, item: Mapping[str, Any] | None = None, *, embedding: np.ndarray | None = None) -> Code:
        """Code for an unseen item from its ``float (d,)`` embedding."""
        self._require_fitted()
        if embedding is None:
            raise DataError(f"{self.scheme}: encode_new needs embedding= (the item's embedding vector)")
        return complete_cold_code(self.trie, self.semantic_codes(embedding)[0], self.codes.shape[1])
