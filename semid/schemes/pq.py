"""PQ: product-quantisation codes (optionally OPQ-rotated, optionally after whitened PCA).

The embedding (after the optional transforms) is cut into ``m`` equal
sub-vectors; each sub-space gets its own k-means codebook of ``codebook_size``
centroids and an item's code is its nearest centroid per sub-space: ``m``
*unordered* codes, the input of RPG-style parallel generators (RPG on Beauty:
whitened PCA to 512, OPQ, 32 x 256). Items that share a whole code get the same
extra level as every other learned scheme, so codes are unique and every
generator can use the index. The transforms and codebooks are stored in the
index, so :meth:`encode_new` works after ``semid.load``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..collisions import count_collisions
from ..errors import DataError, ParameterError
from ..params import Param, at_least
from ..quantize.codes import DISAMBIGUATION_CHOICES, complete_cold_code, disambiguate, embedding_rows
from ..quantize.kmeans import kmeans
from ..registry import register
from ..tokenizer import Code, FitInputs, FitResult, ItemTokenizer

__all__ = ["PQTokenizer"]


def whitened_pca(x: np.ndarray, dim: int, *, floor: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Whitened PCA of ``x`` (``float32 (n, d)``): ``(matrix float32 (dim, d), mean float32 (d,))``.

    ``y = (x - mean) @ matrix.T`` has unit variance along each of the top ``dim`` principal axes.
    Eigenvalues are floored at ``floor`` times the largest: sentence embeddings are close to
    rank-deficient, and dividing by the square root of a zero (or slightly negative, in float32)
    eigenvalue is what made faiss' ``PCAMatrix(eigen_power=-0.5)`` return infinities at full width.
    Each axis' sign is fixed (largest component positive) so the artifact does not depend on the
    LAPACK build.
    """
    x64 = np.asarray(x, dtype=np.float64)
    mean = x64.mean(axis=0)
    centered = x64 - mean
    values, vectors = np.linalg.eigh(centered.T @ centered / max(len(x64) - 1, 1))
    values, vectors = values[::-1][:dim], vectors[:, ::-1][:, :dim]
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(dim)])
    vectors = vectors * np.where(signs == 0, 1.0, signs)
    scale = 1.0 / np.sqrt(np.maximum(values, floor * max(values[0], np.finfo(np.float64).tiny)))
    return (vectors * scale).T.astype(np.float32), mean.astype(np.float32)


@register
class PQTokenizer(ItemTokenizer):
    """Product quantisation (faiss k-means per sub-space; OPQ rotation and whitened PCA optional)."""

    scheme = "pq"
    libraries = ("faiss",)
    requires = frozenset({"embeddings"})
    collision_policy = "TIGER: an extra level numbers items that share a code"
    supports_cold_start = True
    description = "product quantisation: m unordered codes (optionally OPQ, whitened PCA), for parallel generators"
    params: dict[str, Param] = {
        "m": Param("m", 32, "sub-spaces (codes per item)", at_least(1)),
        "codebook_size": Param("codebook_size", 256, "centroids per sub-space", at_least(2)),
        "opq": Param("opq", False, "learn an OPQ rotation first (faiss OPQMatrix)"),
        "pca_dim": Param("pca_dim", 0, "whitened PCA to this width first (0: none; RPG: 512)", at_least(0)),
        "n_iter": Param("n_iter", 20, "k-means iterations", at_least(1)),
        "disambiguation": Param("disambiguation", "colliding_only", "extra level for every item or only colliding ones",
                                choices=DISAMBIGUATION_CHOICES),
        "seed": Param("seed", 0, "random seed"),
    }

    @classmethod
    def conformance_params(cls) -> dict[str, Any]:
        return {"m": 4, "codebook_size": 8, "n_iter": 5}

    def _transform(self, x: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if "pca_matrix" in state:
            x = (x - state["pca_mean"]) @ state["pca_matrix"].T
        if "opq_rotation" in state:
            x = x @ state["opq_rotation"].T
        return np.ascontiguousarray(x, dtype=np.float32)

    def _fit(self, inputs: FitInputs) -> FitResult:
        import faiss

        p = self._params
        x = np.ascontiguousarray(inputs.embeddings, dtype=np.float32)
        n, d = x.shape
        if p["codebook_size"] > n:
            raise ParameterError(f"{self.scheme}: codebook_size {p['codebook_size']} needs at least that many items, "
                                 f"got {n}; pass a smaller codebook_size")
        width = p["pca_dim"] or d
        if p["pca_dim"] and p["pca_dim"] > min(d, n):
            raise ParameterError(f"{self.scheme}: pca_dim {p['pca_dim']} is more than the data supports "
                                 f"({min(d, n)} = min(embedding width {d}, items {n}))")
        if width % p["m"]:
            raise ParameterError(f"{self.scheme}: the embedding width {width} is not divisible by m={p['m']}; "
                                 f"choose m among {[k for k in range(1, min(width, 64) + 1) if width % k == 0]}")
        state: dict[str, np.ndarray] = {}
        if p["pca_dim"]:
            state["pca_matrix"], state["pca_mean"] = whitened_pca(x, p["pca_dim"])
        y = self._transform(x, state)
        if p["opq"]:
            opq = faiss.OPQMatrix(width, p["m"])
            opq.verbose = False
            # The rotation is learned with a PQ of this index's own size (faiss' default is 2^8 per
            # sub-space, which small catalogues cannot train).
            nbits = max(1, int(np.floor(np.log2(p["codebook_size"]))))
            opq_pq = faiss.ProductQuantizer(width, p["m"], nbits)
            opq_pq.verbose = False
            opq.pq = opq_pq
            opq.train(y)
            state["opq_rotation"] = faiss.vector_to_array(opq.A).reshape(width, width).astype(np.float32)
            y = self._transform(x, state)
        sub = width // p["m"]
        centroids = np.zeros((p["m"], p["codebook_size"], sub), dtype=np.float32)
        semantic = np.zeros((n, p["m"]), dtype=np.int64)
        for j in range(p["m"]):
            part = np.ascontiguousarray(y[:, j * sub : (j + 1) * sub])
            centroids[j], semantic[:, j] = kmeans(part, p["codebook_size"], n_iter=p["n_iter"], seed=self.seed + j)
        state["centroids"] = centroids
        codes, vocab, resolved = disambiguate(semantic, [p["codebook_size"]] * p["m"], p["disambiguation"])
        recon = np.concatenate([centroids[j][semantic[:, j]] for j in range(p["m"])], axis=1)
        info = {
            "input_dim": int(d), "quantized_dim": int(width),
            "recon_mse": round(float(np.mean((recon - y) ** 2)), 6),
            "utilization": [round(len(np.unique(semantic[:, j])) / p["codebook_size"], 4) for j in range(p["m"])],
            "collision_rate_before": round(count_collisions(semantic) / n, 5),
        }
        return FitResult(codes=codes, vocab=vocab, collisions_resolved=resolved, state=state, info=info)

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        if "centroids" not in state:
            raise ParameterError(f"{self.scheme}: the index state holds no 'centroids'")

    def semantic_codes(self, embeddings: np.ndarray) -> np.ndarray:
        """Nearest centroid per sub-space: ``int64 (n, m)`` for ``float (n, d)`` embeddings."""
        self._require_fitted()
        state = self.state_
        d = int(state["pca_matrix"].shape[1]) if "pca_matrix" in state else int(
            state["centroids"].shape[0] * state["centroids"].shape[2])
        y = self._transform(embedding_rows(self.scheme, embeddings, d), state)
        centroids = state["centroids"]
        m, _, sub = centroids.shape
        out = np.zeros((len(y), m), dtype=np.int64)
        for j in range(m):
            part = y[:, j * sub : (j + 1) * sub]
            distances = ((part[:, None, :] - centroids[j][None]) ** 2).sum(-1)
            out[:, j] = distances.argmin(1)
        return out

    def encode_new(self, item: Mapping[str, Any] | None = None, *, embedding: np.ndarray | None = None) -> Code:
        """Code for an unseen item from its ``float (d,)`` embedding."""
        self._require_fitted()
        if embedding is None:
            raise DataError(f"{self.scheme}: encode_new needs embedding= (the item's embedding vector)")
        return complete_cold_code(self.trie, self.semantic_codes(embedding)[0], self.codes.shape[1])
