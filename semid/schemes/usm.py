"""USM: LC-Rec's RQ-VAE with uniform semantic mapping on the last level.

Training: the last level assigns each batch by Sinkhorn-Knopp (log domain,
``sk_epsilon`` 0.003 as in LC-Rec) instead of the nearest code, so the last
codebook is used uniformly. Indexing: items are first given their nearest
codes; items that share a full code are re-assigned on the last level by
Sinkhorn-Knopp over just those items, for up to ``sk_rounds`` rounds
(LC-Rec's procedure). Unlike LC-Rec, collisions left after that are resolved
deterministically: within each shared prefix of ``L-1`` levels, items get
distinct last-level codes by a minimum-distance assignment (Hungarian). Only
a prefix holding more than ``codebook_size`` items falls back to an extra
level. Every item ends with a unique code; ``info`` records each count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..collisions import count_collisions
from ..params import Param, at_least
from ..quantize.codes import disambiguate
from ..registry import register
from ..vocab import CodeVocab
from .rqvae import RQVAETokenizer

__all__ = ["SINKHORN_PARAMS", "USMTokenizer", "UniformLastLevel"]


def _colliding(codes: np.ndarray) -> np.ndarray:
    """Boolean mask ``(n,)`` of rows whose code appears more than once."""
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return counts[inverse.reshape(-1)] > 1


#: Parameters of the Sinkhorn re-assignment at indexing, shared by usm and letter.
SINKHORN_PARAMS: dict[str, Param] = {
    "sk_epsilon": Param("sk_epsilon", 0.003, "Sinkhorn entropy weight on the last level", at_least(1e-6)),
    "sk_iters": Param("sk_iters", 50, "Sinkhorn-Knopp iterations", at_least(1)),
    "sk_rounds": Param("sk_rounds", 20, "re-assignment rounds for colliding items at indexing", at_least(0)),
}


class UniformLastLevel:
    """Indexing by uniform semantic mapping on the last level, for RQ-VAE tokenizers.

    :meth:`_uniform_assign`: nearest codes, then up to ``sk_rounds`` Sinkhorn
    re-assignments of the last level over the items that still share a code
    (LC-Rec's and LETTER's indexing). :meth:`_uniform_finish`: the remaining
    collisions get distinct last-level codes within their prefix by a
    minimum-distance assignment; an extra level only where a prefix holds more
    than ``codebook_size`` items. Needs ``self.model_`` (an RQ-VAE) and the
    :data:`SINKHORN_PARAMS` plus ``codebook_size``, ``n_levels`` and
    ``disambiguation`` in ``self._params``.
    """

    def _last_level(self, x) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
        """Nearest codes ``int64 (n, L)`` and last-level distances ``float (n, K)``."""
        import torch

        with torch.no_grad():
            z = torch.cat([self.model_.encode(x[s:s + 8192]) for s in range(0, x.shape[0], 8192)])
            q = self.model_.quantize(z)
            last = self.model_.n_levels - 1
            distances = self.model_.level_distances(q.residuals[:, last], last)
        return q.codes.numpy(), distances.numpy()

    def _uniform_assign(self, x) -> tuple[np.ndarray, dict[str, Any]]:  # noqa: ANN001
        import torch

        from ..quantize.sinkhorn import sinkhorn_assign

        p = self._params
        codes, distances = self._last_level(x)
        self._nearest_codes = codes.copy()
        self._last_distances = distances
        before = count_collisions(codes)
        rounds = 0
        while rounds < p["sk_rounds"]:
            rows = np.nonzero(_colliding(codes))[0]
            if len(rows) == 0:
                break
            rounds += 1
            codes[rows, -1] = sinkhorn_assign(torch.from_numpy(distances[rows]), p["sk_epsilon"], p["sk_iters"]).numpy()
        after = count_collisions(codes)
        return codes, {
            # Before any resolution = nearest codes, as for rqvae (and as the curve reports).
            "collision_rate_before": round(before / len(codes), 5),
            "collisions_nearest": int(before),
            "sinkhorn_rounds": int(rounds),
            # What LC-Rec / LETTER leave in their index (they stop here).
            "collisions_after_sinkhorn": int(after),
            "collision_rate_after_sinkhorn": round(after / len(codes), 5),
        }

    def _uniform_finish(self, semantic: np.ndarray, x) -> tuple[np.ndarray, Any, int, dict[str, Any]]:  # noqa: ANN001
        from scipy.optimize import linear_sum_assignment

        p = self._params
        k = p["codebook_size"]
        codes = semantic.copy()
        mask = _colliding(codes)
        reassigned = 0
        overflow_prefixes = 0
        if mask.any():
            _, prefix_group = np.unique(codes[:, :-1], axis=0, return_inverse=True)
            prefix_group = prefix_group.reshape(-1)
            for group in np.unique(prefix_group[mask]):  # sorted: deterministic order
                rows = np.nonzero(prefix_group == group)[0]
                if len(rows) > k:
                    overflow_prefixes += 1
                    continue
                chosen_rows, chosen_codes = linear_sum_assignment(self._last_distances[rows])
                new = chosen_codes[np.argsort(chosen_rows)]
                reassigned += int((codes[rows, -1] != new).sum())
                codes[rows, -1] = new
        sizes = [k] * p["n_levels"]
        if count_collisions(codes):
            final, vocab, _ = disambiguate(codes, sizes, p["disambiguation"])
        else:
            final, vocab = codes.astype(np.int32), CodeVocab(sizes)
        # Items whose nearest code was shared with another item: the ones that had to move.
        resolved = count_collisions(self._nearest_codes)
        del self._nearest_codes, self._last_distances
        return final, vocab, resolved, {
            "reassigned_by_assignment": reassigned,
            "overflow_prefixes": overflow_prefixes,
            "extra_level": bool(final.shape[1] > p["n_levels"]),
        }


@register
class USMTokenizer(UniformLastLevel, RQVAETokenizer):
    """RQ-VAE with Sinkhorn uniform assignment on the last level (LC-Rec)."""

    scheme = "usm"
    collision_policy = (
        "LC-Rec uniform semantic mapping (Sinkhorn on the last level), then a minimum-distance "
        "unique assignment within each prefix; an extra level only if a prefix overflows"
    )
    description = "RQ-VAE with uniform semantic mapping on the last level (LC-Rec)"
    params: dict[str, Param] = {
        **RQVAETokenizer.params,
        "n_levels": Param("n_levels", 4, "semantic levels L (LC-Rec: 4)", at_least(2)),
        **SINKHORN_PARAMS,
        "disambiguation": Param("disambiguation", "colliding_only",
                                "fallback when a prefix holds more than codebook_size items",
                                choices=("always", "colliding_only")),
    }

    @classmethod
    def conformance_params(cls) -> dict[str, Any]:
        return {**RQVAETokenizer.conformance_params(), "n_levels": 2, "codebook_size": 8}

    def _sinkhorn_epsilons(self) -> list[float]:
        p = self._params
        return [0.0] * (p["n_levels"] - 1) + [p["sk_epsilon"]]

    def _train_config(self):
        config = super()._train_config()
        config.sinkhorn_iters = self._params["sk_iters"]
        return config

    def _assign_semantic_codes(self, x) -> tuple[np.ndarray, dict[str, Any]]:  # noqa: ANN001
        return self._uniform_assign(x)

    def _finish_codes(self, semantic: np.ndarray, x) -> tuple[np.ndarray, Any, int, dict[str, Any]]:  # noqa: ANN001
        return self._uniform_finish(semantic, x)
