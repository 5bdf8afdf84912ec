"""RQ-VAE item tokenizer (TIGER), and the base class for RQ-VAE variants.

An MLP encoder maps each item embedding to a latent ``z`` (``code_dim``), a
residual quantizer with ``n_levels`` codebooks of ``codebook_size`` codes
picks one code per level, an MLP decoder reconstructs the embedding. Items
whose semantic codes collide get TIGER's extra level (0, 1, 2, ...). The
learned weights are stored in the index (``state.safetensors``, keys
``rqvae.<parameter name>``), so :meth:`encode_new` works after ``semid.load``.

Extending (LETTER, USM)
-----------------------
Subclass :class:`RQVAETokenizer`, give it a new ``scheme`` name and extra
``params`` (``{**RQVAETokenizer.params, ...}``), decorate with ``@register``,
and override any of these hooks:

* ``extra_loss(batch_indices, z, z_q, codes) -> Tensor | None``: added to the
  training loss of each batch. ``batch_indices`` (``int64 (B,)``) are catalogue
  rows, so ``self.fit_inputs_.cf_embeddings[batch_indices]`` gives the batch's
  collaborative embeddings; ``z``/``z_q`` are ``(B, code_dim)`` latents before
  and after quantization (``z_q`` passes gradients to the encoder); ``codes``
  is ``int64 (B, L)``. The codebooks are ``self.model_.codebooks``
  (``(L, K, code_dim)`` parameter, trained by the same optimizer).
* ``on_epoch_start(epoch)``: e.g. re-cluster codebook vectors each epoch.
* ``_sinkhorn_epsilons()``: per-level Sinkhorn epsilon used in training (USM).
* ``_assign_semantic_codes(x)`` and ``_finish_codes(semantic, x)``: how the
  final codes are chosen and made unique (USM spreads collisions).

Declare ``requires = frozenset({"embeddings", "cf_embeddings"})`` when the
extra loss needs collaborative embeddings; ``fit`` then checks they exist.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..collisions import count_collisions
from ..errors import DataError, ParameterError
from ..params import Param, at_least, in_range
from ..quantize.codes import DISAMBIGUATION_CHOICES, complete_cold_code, disambiguate, embedding_rows
from ..registry import register
from ..tokenizer import Code, FitInputs, FitResult, ItemTokenizer

__all__ = ["RQVAETokenizer"]

logger = logging.getLogger(__name__)

STATE_PREFIX = "rqvae."


def _positive_int_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        return "must be a list of positive integers (e.g. [512, 256, 128])"
    return None


@register
class RQVAETokenizer(ItemTokenizer):
    """TIGER's RQ-VAE semantic IDs from item embeddings.

    Defaults follow TIGER (hidden 512-256-128, code dim 32, 3 x 256 codes,
    beta 0.25, k-means init) except the optimisation budget: TIGER trains
    20k epochs with Adagrad; here standardised inputs, full-catalogue k-means
    init, dead-code restarts and batches of 2048 with AdamW + cosine decay reach
    full codebook use and ~4% collisions on Beauty in 50 epochs (~1.5 minutes
    on 2 busy CPU cores; ``benchmarks/results/learned.md`` has the curve).
    """

    scheme = "rqvae"
    libraries = ("torch", "faiss")
    requires = frozenset({"embeddings"})
    collision_policy = "TIGER: an extra level numbers items that share a semantic code"
    supports_cold_start = True
    description = "RQ-VAE residual quantization of item embeddings (TIGER)"
    params: dict[str, Param] = {
        "n_levels": Param("n_levels", 3, "semantic levels L", at_least(1)),
        "codebook_size": Param("codebook_size", 256, "codes per level K", at_least(2)),
        "hidden": Param("hidden", [512, 256, 128], "encoder hidden widths (decoder mirrors)", _positive_int_list, kind=list),
        "code_dim": Param("code_dim", 32, "latent / code vector width", at_least(1)),
        "beta": Param("beta", 0.25, "commitment weight", at_least(0.0)),
        "quant_weight": Param("quant_weight", 1.0, "weight of the quantization loss", at_least(0.0)),
        "dropout": Param("dropout", 0.0, "dropout before each linear layer", in_range(0.0, 0.9)),
        "epochs": Param("epochs", 50, "training epochs", at_least(1)),
        "batch_size": Param("batch_size", 2048, "training batch size", at_least(1)),
        "lr": Param("lr", 2e-3, "learning rate", at_least(0.0)),
        "optimizer": Param("optimizer", "adamw", "optimizer", choices=("adamw", "adam", "adagrad", "sgd")),
        "weight_decay": Param("weight_decay", 1e-4, "weight decay", at_least(0.0)),
        "lr_schedule": Param("lr_schedule", "cosine", "learning-rate schedule", choices=("cosine", "constant")),
        "standardize": Param("standardize", True, "standardize input dimensions (mean 0, std 1) before the encoder"),
        "kmeans_init": Param("kmeans_init", True, "initialise codebooks by k-means on all items"),
        "dead_code_restart": Param("dead_code_restart", True, "move unused codes onto high-error items each epoch"),
        "eval_every": Param("eval_every", 5, "epochs between curve points (info['curve'])", at_least(1)),
        "disambiguation": Param("disambiguation", "always", "extra level for every item or only colliding ones",
                                choices=DISAMBIGUATION_CHOICES),
        "threads": Param("threads", 1, "torch intra-op threads while fitting (0 = leave torch's setting)", at_least(0)),
        "seed": Param("seed", 0, "random seed"),
    }

    @classmethod
    def conformance_params(cls) -> dict[str, Any]:
        """Small and fast settings for tests (hundreds of items, random embeddings)."""
        return {"n_levels": 2, "codebook_size": 8, "hidden": [32], "code_dim": 8, "epochs": 3, "batch_size": 128}

    # -- extension hooks ------------------------------------------------------
    def extra_loss(self, batch_indices, z, z_q, codes):  # noqa: ANN001 - torch types imported lazily
        """Extra training loss for one batch (see the module docstring); default none."""
        return None

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each training epoch; default does nothing."""

    def _sinkhorn_epsilons(self) -> list[float]:
        """Per-level Sinkhorn epsilon during training (0 = nearest code)."""
        return []

    def _assign_semantic_codes(self, x) -> tuple[np.ndarray, dict[str, Any]]:  # noqa: ANN001
        """Nearest-code semantic codes ``int64 (n, L)`` of the catalogue, and facts for ``info``."""
        codes, _ = self.model_.encode_codes(x)
        return codes.numpy(), {}

    def _finish_codes(self, semantic: np.ndarray, x) -> tuple[np.ndarray, Any, int, dict[str, Any]]:  # noqa: ANN001
        """Unique codes from semantic codes: ``(codes, vocab, collisions_resolved, info)``."""
        p = self._params
        codes, vocab, resolved = disambiguate(semantic, [p["codebook_size"]] * p["n_levels"], p["disambiguation"])
        return codes, vocab, resolved, {}

    # -- fitting --------------------------------------------------------------
    def _train_config(self):
        from ..quantize.trainer import TrainConfig

        p = self._params
        return TrainConfig(
            epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"], optimizer=p["optimizer"],
            weight_decay=p["weight_decay"], lr_schedule=p["lr_schedule"], quant_weight=p["quant_weight"],
            standardize=p["standardize"], kmeans_init=p["kmeans_init"], dead_code_restart=p["dead_code_restart"],
            sinkhorn_epsilons=self._sinkhorn_epsilons(), eval_every=p["eval_every"], seed=self.seed,
        )

    def _build_model(self, in_dim: int):
        from ..quantize.rqvae_model import RQVAE

        p = self._params
        return RQVAE(in_dim, p["hidden"], p["code_dim"], p["n_levels"], p["codebook_size"],
                     beta=p["beta"], dropout=p["dropout"])

    def _fit(self, inputs: FitInputs) -> FitResult:
        import torch

        from ..quantize.trainer import evaluate_model, train_rqvae

        p = self._params
        n = len(inputs.items)
        if n < p["codebook_size"]:
            raise ParameterError(
                f"{self.scheme}: codebook_size {p['codebook_size']} needs at least that many items, "
                f"got {n}; pass a smaller codebook_size (e.g. codebook_size={max(2, n // 4)})"
            )
        self.fit_inputs_ = inputs
        x = torch.from_numpy(inputs.embeddings)
        # One thread by default: these MLPs are small, and on a shared 2-core
        # machine two threads measured 5x slower per epoch (sync overhead).
        threads_before = torch.get_num_threads()
        if p["threads"]:
            torch.set_num_threads(p["threads"])
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                self.model_ = self._build_model(x.shape[1])
                curve = train_rqvae(self.model_, x, self._train_config(), hooks=self)
            final = evaluate_model(self.model_, x)
            semantic, assign_info = self._assign_semantic_codes(x)
            codes, vocab, resolved, finish_info = self._finish_codes(semantic, x)
        finally:
            torch.set_num_threads(threads_before)
            del self.fit_inputs_  # the catalogue is not part of the fitted state

        info = {
            "input_dim": int(x.shape[1]),
            "recon_mse": round(final["recon_mse"], 6),
            "recon_mse_standardized": round(final["recon_mse_std"], 5),
            "quant_mse": round(final["quant_mse"], 6),
            "utilization": final["utilization"],
            "collision_rate_before": round(count_collisions(semantic) / n, 5),
            "curve": curve,
            **assign_info,
            **finish_info,
        }
        state = {STATE_PREFIX + k: v.detach().numpy().copy() for k, v in self.model_.state_dict().items()}
        return FitResult(codes=codes, vocab=vocab, collisions_resolved=resolved, state=state, info=info)

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        import torch

        weights = {k[len(STATE_PREFIX):]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith(STATE_PREFIX)}
        encoder_weights = [k for k in weights if k.startswith("encoder.") and k.endswith(".weight")]
        if not encoder_weights:
            raise ParameterError(f"{self.scheme}: the index state holds no RQ-VAE weights")
        first = min(encoder_weights, key=lambda k: int(k.split(".")[1]))
        self.model_ = self._build_model(int(weights[first].shape[1]))
        self.model_.load_state_dict(weights)
        self.model_.eval()

    # -- cold start and diagnostics -------------------------------------------
    def _embedding_matrix(self, embedding: Any) -> np.ndarray:
        return embedding_rows(self.scheme, embedding, int(self.model_.in_dim))

    def semantic_codes(self, embeddings: np.ndarray) -> np.ndarray:
        """Nearest-code semantic codes ``int64 (n, L)`` of ``float (n, in_dim)`` embeddings."""
        import torch

        self._require_fitted()
        codes, _ = self.model_.encode_codes(torch.from_numpy(self._embedding_matrix(embeddings)))
        return codes.numpy()

    def reconstruct(self, embeddings: np.ndarray) -> np.ndarray:
        """Decoder output ``float32 (n, in_dim)`` from the quantized latents of ``embeddings``."""
        import torch

        self._require_fitted()
        x = torch.from_numpy(self._embedding_matrix(embeddings))
        with torch.no_grad():
            codes, _ = self.model_.encode_codes(x)
            quantized = sum(self.model_.codebooks[level][codes[:, level]] for level in range(self.model_.n_levels))
            return self.model_.decode(quantized).numpy()

    def encode_new(self, item: Mapping[str, Any] | None = None, *, embedding: np.ndarray | None = None) -> Code:
        """Code for an unseen item from its ``float (in_dim,)`` embedding (nearest codes per level)."""
        self._require_fitted()
        if embedding is None:
            raise DataError(f"{self.scheme}: encode_new needs embedding= (the item's embedding vector)")
        semantic = self.semantic_codes(embedding)[0]
        return complete_cold_code(self.trie, semantic, self.codes.shape[1])
