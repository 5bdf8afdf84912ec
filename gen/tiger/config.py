"""TIGER settings: model shape, training recipe, early stopping, decoding.

Defaults follow the TIGER paper (Rajput et al., NeurIPS 2023): a T5 encoder-
decoder with 4 + 4 layers, d_model 128, 6 heads of 64, feed-forward 1024,
dropout 0.1, histories of the last 20 items, batch 256, beam 20, with one
exception chosen by measurement: no user token (``user_buckets=0``; the paper
hashes users into 2000 buckets). Its 2000 extra rows share the output softmax
without ever being targets; on the Beauty subset dropping them lowered the
validation NLL of every code position by 0.3-0.8 nats and raised NDCG@10 from
0.064 to 0.069 after 3 epochs (benchmarks/results/tiger.md), and the paper's own
ablation finds the user token irrelevant to accuracy. ``recipe`` picks how training examples are formed
(see :mod:`semid.gen.tiger.batches`); the default ``hybrid`` (packed block-causal windows for all but
each user's latest target, which is encoded bidirectionally as at inference) was chosen by
measurement: on the Beauty subset (3 seeds, 3 epochs) validation NDCG@10 0.0796 +- 0.0098 against
0.0675 +- 0.0034 for ``packed``; on full Beauty R@10 / N@10 0.042 / 0.0203 vs 0.041 / 0.0185 at
0.26M targets and 0.047 / 0.0235 vs 0.0435 / 0.0219 at 0.53M, at the same whole-epoch wall time
here (653 vs 667 s per epoch alone on 2 cores; benchmarks/results/tiger.md).

The default ``schedule=wsd`` (AdamW at a constant rate, then linearly to 0 over the last
``cooldown = 0.375`` of ``max_epochs``) was chosen the same way: on full Beauty, 8 epochs
(1.05M targets), test R@10 / N@10 0.0405 / 0.0201 against 0.0333 for the constant rate at the same
targets; on the Beauty subset (3 seeds, 3 epochs) a tie, NDCG@10 0.0763 +- 0.0032 vs
0.0775 +- 0.0109, so it costs nothing where it does not help. The decay is placed by ``max_epochs``:
size ``max_epochs`` to the epochs the run will get, or a run stopped earlier by its budget or
patience never decays and trains at the constant rate throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

from semid.errors import ParameterError
from semid.evaluation.split import DEFAULT_MAX_HISTORY
from semid.params import above, at_least, in_half_open, in_range
from semid.settings import Settings, setting

from ..training.precision import PRECISIONS
from ..training.schedules import SHAPES

__all__ = ["OPTIMIZERS", "RECIPES", "SCHEDULES", "SOFTMAX", "TigerConfig"]

#: ``packed``: one block-causal encoder pass per user supervises all its next
#: items; ``per_prefix``: one example per (history prefix, next item), TIGER's
#: reference pipeline; ``hybrid``: packed for all but each user's latest target,
#: which (like inference) is encoded bidirectionally.
RECIPES = ("packed", "per_prefix", "hybrid")
#: ``auto``: what the recipe needs (packed: block_causal; hybrid, per_prefix: full).
ENCODER_ATTENTION = ("auto", "block_causal", "full")
#: ``adamw`` (torch AdamW) or ``adafactor`` (transformers' Adafactor with
#: ``scale_parameter=True``, ``relative_step=False``: the TIGER paper's optimizer
#: family; without parameter scaling lr 0.01 is a step as large as the initial
#: weights, which made a published reproduction collapse).
OPTIMIZERS = ("adamw", "adafactor")
#: After linear warm-up (:mod:`semid.gen.training.schedules`): ``constant``;
#: ``inverse_sqrt``, constant until ``decay_after`` steps, then ``lr * sqrt(decay_after / step)``
#: (TIGER paper); ``linear`` / ``cosine`` down to 0 at the end of ``max_epochs``; ``wsd``,
#: constant, then linearly down to 0 over the last ``cooldown`` fraction of ``max_epochs``.
SCHEDULES = SHAPES

#: ``vocab``: one tied softmax over every token (T5's LM head, the paper and LETTER);
#: ``level``: the softmax of a target token covers its code level only (what GRID's and
#: cornac's per-level heads compute), in training and in decoding
#: (:mod:`semid.gen.decoding.level_softmax`). Measured on full Beauty it does not help
#: (valid N@10 0.0211 vs 0.0235 at 0.53M targets, benchmarks/results/tiger.md): ``vocab``
#: stays the default.
SOFTMAX = ("vocab", "level")


@dataclass
class TigerConfig(Settings):
    """Every TIGER setting; ``semid train tiger --set key=value`` overrides any field.

    Model: ``num_layers`` / ``num_decoder_layers``, ``d_model``, ``num_heads`` x
    ``d_kv``, ``d_ff``, ``dropout``, ``user_buckets`` (0 disables the user token),
    ``max_history`` (items given to the encoder), ``encoder_attention``
    (``block_causal``: each item sees itself and earlier items, required by the
    packed recipe; ``full``: bidirectional, TIGER's original; ``auto``: what the recipe needs).

    Training: ``recipe`` (see :data:`RECIPES`), ``batch_size`` (next-item targets per optimizer step),
    ``optimizer`` (:data:`OPTIMIZERS`), ``lr``, ``weight_decay``, ``warmup_steps``, ``schedule``
    (:data:`SCHEDULES`) and ``decay_after``, ``max_epochs``, ``patience``
    (evaluations without a better validation NDCG@10 before stopping),
    ``eval_every`` (epochs between validations), ``eval_users`` (seeded sample
    of validation users, 0 = all), ``eval_beams``, ``checkpoint_minutes``,
    ``seed``, ``device``.
    """

    owner = "tiger"

    num_layers: int = setting(4, "encoder layers", check=at_least(1))
    num_decoder_layers: int = setting(4, "decoder layers", check=at_least(1))
    d_model: int = setting(128, "model width", check=at_least(1))
    num_heads: int = setting(6, "attention heads", check=at_least(1))
    d_kv: int = setting(64, "width of one head", check=at_least(1))
    d_ff: int = setting(1024, "feed-forward width", check=at_least(1))
    dropout: float = setting(0.1, "dropout", check=in_half_open(0.0, 1.0))
    softmax: str = setting("vocab", "output softmax: vocab (whole vocabulary) or level (the target's code level)",
                           choices=SOFTMAX)
    user_buckets: int = setting(0, "hashed user tokens (0: none)", check=at_least(0))
    max_history: int = setting(DEFAULT_MAX_HISTORY, "history items given to the encoder", check=at_least(1))
    encoder_attention: str = setting("auto", "encoder attention (auto: block_causal for packed, full otherwise)",
                                     choices=ENCODER_ATTENTION)
    recipe: str = setting("hybrid", "how training examples are formed (hybrid: measured best, see the module "
                          "docstring)", choices=RECIPES)
    batch_size: int = setting(256, "next-item targets per optimizer step", check=at_least(1))
    optimizer: str = setting("adamw", "optimizer", choices=OPTIMIZERS)
    lr: float = setting(1e-3, "learning rate", check=above(0.0))
    weight_decay: float = setting(0.01, "weight decay", check=at_least(0.0))
    warmup_steps: int = setting(200, "linear warm-up steps", check=at_least(0))
    schedule: str = setting("wsd", "learning-rate schedule after warm-up (wsd: measured best, see the module "
                            "docstring; it decays only if the run reaches the last cooldown share of max_epochs)",
                            choices=SCHEDULES)
    decay_after: int = setting(10_000, "inverse_sqrt: steps before the decay starts", check=at_least(0))
    cooldown: float = setting(0.375, "wsd: final fraction of the max_epochs steps spent decaying to 0",
                              check=in_range(0.01, 1.0))
    max_epochs: int = setting(200, "epochs in total", check=at_least(1))
    patience: int = setting(5, "validations without a better NDCG@10 before stopping", check=at_least(1))
    eval_every: int = setting(1, "epochs between validations", check=at_least(1))
    eval_users: int = setting(2000, "seeded sample of validation users (0: all)", check=at_least(0))
    eval_beams: int = setting(20, "beams at validation", check=at_least(1))
    checkpoint_minutes: float = setting(10.0, "minutes between mid-epoch checkpoints", check=above(0.0))
    precision: str = setting("fp32", "training precision: fp32, or bf16 (matrix products in bfloat16 under "
                             "autocast; logits, weights, optimizer and decoding stay float32; 1.4x faster measured on a "
                             "CPU with AVX512-BF16, slower on CPUs without native bfloat16)", choices=PRECISIONS)
    seed: int = setting(0, "seed of initialisation and batch order", check=at_least(0))
    device: str = setting("cpu", "torch device")

    @property
    def attention(self) -> str:
        """The encoder attention in effect: ``encoder_attention``, with ``auto`` resolved for the recipe."""
        if self.encoder_attention != "auto":
            return self.encoder_attention
        return "block_causal" if self.recipe == "packed" else "full"

    def check_together(self) -> None:
        if self.recipe == "packed" and self.attention != "block_causal":
            raise ParameterError(
                "tiger: recipe 'packed' shares encoder states between targets and needs "
                "encoder_attention='block_causal'; use recipe='hybrid' or 'per_prefix' for 'full'"
            )
        if self.recipe == "hybrid" and self.attention != "full":
            raise ParameterError(
                "tiger: recipe 'hybrid' trains the bidirectional encoder used at inference and needs "
                "encoder_attention='full' (--set encoder_attention=full)"
            )
