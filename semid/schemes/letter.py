"""LETTER (Wang et al., CIKM 2024): RQ-VAE with collaborative and diversity regularization.

The loss of every training batch is ``L_sem + alpha * L_cf + diversity_beta * L_div``:

- ``L_sem``: the RQ-VAE reconstruction and quantization losses (TIGER), from
  :class:`~semid.schemes.rqvae.RQVAETokenizer`.
- ``L_cf``: in-batch contrastive alignment of each item's quantized latent
  ``z_q_i`` (``code_dim``) with its collaborative embedding ``h_i``: softmax
  cross-entropy over ``<z_q_i, h_j> / tau`` for ``j`` in the batch, target
  ``j = i``. CF embeddings of another width go through a linear projection to
  ``code_dim`` that is trained with the model and dropped afterwards (it is not
  needed to encode). Items with similar collaborative behaviour are pulled
  towards similar code sequences.
- ``L_div``: codebook vectors of each level are clustered into ``n_clusters``
  groups of nearly equal size by constrained k-means (k-means-constrained),
  re-clustered every ``recluster_every`` epochs. For each item's chosen code,
  a random *other* code of the same cluster is the positive and every other code
  of the level a negative (softmax over ``<e_c, e_j> / tau``, ``j != c``). Spreading
  codes into balanced groups counters code-assignment bias (a few codes taking
  most items).

Indexing (``indexing``): ``"sinkhorn"`` (default, as LETTER's released code,
which builds on LC-Rec's) gives items their nearest codes, re-assigns the last
level of items that still share a code by Sinkhorn-Knopp for up to ``sk_rounds``
rounds, and then, unlike the reference, resolves what is left by a unique
minimum-distance assignment within each prefix (see
:class:`~semid.schemes.usm.UniformLastLevel`); ``"extra_level"`` keeps nearest
codes and numbers colliding items on an extra level, as TIGER.

With ``tau = 1`` the two contrastive terms are exactly the paper's formulas
(plain inner products); LETTER reports tau in 0.7-1.0 as a sensitive setting.
Defaults follow LETTER: 4 levels x 256 codes, code dim 32, alpha 0.02,
diversity beta 1e-4, K = 10 clusters. CF embeddings are an *input*
(``cf_embeddings``, e.g. a 32-d SASRec exported by ``semid cf export-embeddings``);
this module never imports the model that made them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..params import Param, at_least
from ..registry import register
from ..tokenizer import FitInputs, FitResult
from .rqvae import RQVAETokenizer
from .usm import SINKHORN_PARAMS, UniformLastLevel

__all__ = ["LetterTokenizer"]

logger = logging.getLogger(__name__)


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be > 0"


@register
class LetterTokenizer(UniformLastLevel, RQVAETokenizer):
    """LETTER item tokenizer: RQ-VAE semantic IDs regularized by CF embeddings and code diversity."""

    scheme = "letter"
    collision_policy = (
        "indexing=sinkhorn (default, LETTER): Sinkhorn re-assignment on the last level, then a minimum-distance "
        "unique assignment within each prefix (extra level only if a prefix overflows); "
        "indexing=extra_level: TIGER's extra level numbering colliding items"
    )
    requires = frozenset({"embeddings", "cf_embeddings"})
    description = "LETTER: RQ-VAE + collaborative (CF contrastive) and diversity regularization"
    params: dict[str, Param] = {
        **RQVAETokenizer.params,
        "n_levels": Param("n_levels", 4, "semantic levels L", at_least(1)),
        "alpha": Param("alpha", 0.02, "weight of the collaborative (CF) contrastive loss", at_least(0.0)),
        "diversity_beta": Param("diversity_beta", 1e-4, "weight of the code diversity loss", at_least(0.0)),
        "n_clusters": Param("n_clusters", 10, "constrained k-means clusters of codebook vectors per level", at_least(2)),
        "tau": Param("tau", 1.0, "temperature of both contrastive losses", _positive),
        "recluster_every": Param("recluster_every", 10, "epochs between re-clusterings of the codebooks", at_least(1)),
        "indexing": Param("indexing", "sinkhorn",
                          "collisions: Sinkhorn on the last level then unique assignment (LETTER), or extra_level (TIGER)",
                          choices=("sinkhorn", "extra_level")),
        **SINKHORN_PARAMS,
    }

    @classmethod
    def conformance_params(cls) -> dict[str, Any]:
        """Small and fast settings for tests (hundreds of items, random embeddings)."""
        return {
            "n_levels": 2, "codebook_size": 8, "hidden": [32], "code_dim": 8, "epochs": 3, "batch_size": 128,
            "n_clusters": 2, "recluster_every": 1, "alpha": 0.1, "diversity_beta": 0.01,
        }

    # -- fitting --------------------------------------------------------------
    def _fit(self, inputs: FitInputs) -> FitResult:
        import torch

        p = self._params
        if p["n_clusters"] > p["codebook_size"]:
            from ..errors import ParameterError

            raise ParameterError(
                f"{self.scheme}: n_clusters ({p['n_clusters']}) cannot exceed codebook_size ({p['codebook_size']})"
            )
        self._cf_targets = torch.from_numpy(inputs.cf_embeddings)
        self._clusters: list[np.ndarray] = []
        self._div_rng = np.random.default_rng(self.seed)
        self._loss_sums = {"cf": 0.0, "div": 0.0, "batches": 0}
        try:
            result = super()._fit(inputs)
        finally:
            del self._cf_targets
        result.info["letter"] = {
            "mean_cf_loss": round(self._loss_sums["cf"] / max(self._loss_sums["batches"], 1), 6),
            "mean_diversity_loss": round(self._loss_sums["div"] / max(self._loss_sums["batches"], 1), 6),
            "cf_dim": int(inputs.cf_embeddings.shape[1]),
            "cf_projection": bool(inputs.cf_embeddings.shape[1] != p["code_dim"]),
        }
        return result

    def _build_model(self, in_dim: int):
        from torch import nn

        model = super()._build_model(in_dim)
        targets = getattr(self, "_cf_targets", None)
        if targets is not None and targets.shape[1] != self._params["code_dim"]:
            # Trained with the model (its parameters are in the optimizer), removed after training.
            model.cf_projection = nn.Linear(targets.shape[1], self._params["code_dim"], bias=False)
        return model

    def _assign_semantic_codes(self, x):  # noqa: ANN001
        # Training is over: the projection only served L_cf and is not part of the index.
        if hasattr(self.model_, "cf_projection"):
            del self.model_.cf_projection
        if self._params["indexing"] == "sinkhorn":
            return self._uniform_assign(x)
        return super()._assign_semantic_codes(x)

    def _finish_codes(self, semantic: np.ndarray, x):  # noqa: ANN001
        if self._params["indexing"] == "sinkhorn":
            return self._uniform_finish(semantic, x)
        return super()._finish_codes(semantic, x)

    # -- regularizers -----------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        if epoch % self._params["recluster_every"] == 0:
            self._recluster()

    def _recluster(self) -> None:
        """Constrained k-means of every level's codebook vectors into ``n_clusters`` balanced groups."""
        from k_means_constrained import KMeansConstrained

        n_codes, k = self._params["codebook_size"], self._params["n_clusters"]
        books = self.model_.codebooks.detach().numpy().astype(np.float64)
        size_min = max(n_codes // k - max(n_codes // (4 * k), 1), 1)
        size_max = -(-n_codes // k) + max(n_codes // (4 * k), 1)
        self._clusters = []
        for level in range(books.shape[0]):
            kmeans = KMeansConstrained(
                n_clusters=k, size_min=size_min, size_max=size_max, n_init=1, max_iter=50,
                random_state=self.seed + level,
            )
            self._clusters.append(np.asarray(kmeans.fit_predict(books[level]), dtype=np.int64))

    def extra_loss(self, batch_indices, z, z_q, codes):  # noqa: ANN001
        """``alpha * L_cf + diversity_beta * L_div`` for one batch (scalar tensor)."""
        import torch
        from torch.nn import functional as F

        p = self._params
        tau = p["tau"]
        total = z_q.new_zeros(())
        cf_value = div_value = 0.0
        if p["alpha"] > 0 and len(batch_indices) > 1:
            h = self._cf_targets[batch_indices]
            if hasattr(self.model_, "cf_projection"):
                h = self.model_.cf_projection(h)
            logits = z_q @ h.T / tau  # (B, B): item i against every item's CF embedding
            cf = F.cross_entropy(logits, torch.arange(len(batch_indices)))
            total = total + p["alpha"] * cf
            cf_value = float(cf.detach())
        if p["diversity_beta"] > 0 and self._clusters:
            div = self._diversity_loss(codes, tau)
            if div is not None:
                total = total + p["diversity_beta"] * div
                div_value = float(div.detach())
        self._loss_sums["cf"] += cf_value
        self._loss_sums["div"] += div_value
        self._loss_sums["batches"] += 1
        return total

    def _diversity_loss(self, codes, tau: float):  # noqa: ANN001
        """Mean over levels of the same-cluster contrastive loss; None when no code has a cluster mate."""
        import torch
        from torch.nn import functional as F

        losses = []
        codes_np = codes.numpy()
        for level, labels in enumerate(self._clusters):
            chosen = codes_np[:, level]
            positives = np.empty(len(chosen), dtype=np.int64)
            keep = np.zeros(len(chosen), dtype=bool)
            members = {c: np.nonzero(labels == c)[0] for c in np.unique(labels[chosen])}
            for row, code in enumerate(chosen):
                mates = members[labels[code]]
                if len(mates) < 2:
                    continue
                pick = mates[self._div_rng.integers(len(mates) - 1)]
                positives[row] = pick if pick != code else mates[-1]  # a uniform mate other than itself
                keep[row] = True
            if not keep.any():
                continue
            book = self.model_.codebooks[level]  # (K, d), trained by the same optimizer
            anchor = torch.from_numpy(chosen[keep])
            logits = book[anchor] @ book.T / tau  # (B', K)
            logits[torch.arange(len(anchor)), anchor] = float("-inf")  # a code is not its own positive
            losses.append(F.cross_entropy(logits, torch.from_numpy(positives[keep])))
        return torch.stack(losses).mean() if losses else None
