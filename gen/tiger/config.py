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
(see :mod:`semid.gen.tiger.batches`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semid.evaluation.split import DEFAULT_MAX_HISTORY
from semid.errors import ParameterError

__all__ = ["OPTIMIZERS", "RECIPES", "SCHEDULES", "TigerConfig"]

#: ``packed``: one block-causal encoder pass per user supervises all its next
#: items; ``per_prefix``: one example per (history prefix, next item), TIGER's
#: reference pipeline; ``hybrid``: packed for all but each user's latest target,
#: which (like inference) is encoded bidirectionally.
RECIPES = ("packed", "per_prefix", "hybrid")
ENCODER_ATTENTION = ("block_causal", "full")
#: ``adamw`` (torch AdamW) or ``adafactor`` (transformers' Adafactor with
#: ``scale_parameter=True``, ``relative_step=False``: the TIGER paper's optimizer
#: family; without parameter scaling lr 0.01 is a step as large as the initial
#: weights, which made a published reproduction collapse).
OPTIMIZERS = ("adamw", "adafactor")
#: ``constant`` after linear warm-up, or ``inverse_sqrt``: constant until
#: ``decay_after`` steps, then ``lr * sqrt(decay_after / step)`` (TIGER paper).
SCHEDULES = ("constant", "inverse_sqrt")


@dataclass
class TigerConfig:
    """Every TIGER setting; ``semid train tiger --set key=value`` overrides any field.

    Model: ``num_layers`` / ``num_decoder_layers``, ``d_model``, ``num_heads`` x
    ``d_kv``, ``d_ff``, ``dropout``, ``user_buckets`` (0 disables the user token),
    ``max_history`` (items given to the encoder), ``encoder_attention``
    (``block_causal``: each item sees itself and earlier items, required by the
    packed recipe; ``full``: bidirectional, TIGER's original).

    Training: ``recipe`` (see :data:`RECIPES`), ``batch_size`` (next-item targets per optimizer step),
    ``optimizer`` (:data:`OPTIMIZERS`), ``lr``, ``weight_decay``, ``warmup_steps``, ``schedule``
    (:data:`SCHEDULES`) and ``decay_after``, ``max_epochs``, ``patience``
    (evaluations without a better validation NDCG@10 before stopping),
    ``eval_every`` (epochs between validations), ``eval_users`` (seeded sample
    of validation users, 0 = all), ``eval_beams``, ``checkpoint_minutes``,
    ``seed``, ``device``.
    """

    num_layers: int = 4
    num_decoder_layers: int = 4
    d_model: int = 128
    num_heads: int = 6
    d_kv: int = 64
    d_ff: int = 1024
    dropout: float = 0.1
    user_buckets: int = 0
    max_history: int = DEFAULT_MAX_HISTORY
    encoder_attention: str = "block_causal"
    recipe: str = "packed"
    batch_size: int = 256
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 200
    schedule: str = "constant"
    decay_after: int = 10_000
    max_epochs: int = 200
    patience: int = 5
    eval_every: int = 1
    eval_users: int = 2000
    eval_beams: int = 20
    checkpoint_minutes: float = 10.0
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "TigerConfig":
        """Raise :class:`ParameterError` naming the first bad field."""
        positive = (
            "num_layers", "num_decoder_layers", "d_model", "num_heads", "d_kv", "d_ff",
            "max_history", "batch_size", "max_epochs", "patience", "eval_every", "eval_beams",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"tiger: setting {name!r} must be a positive integer, got {value!r}")
        for name in ("user_buckets", "eval_users", "warmup_steps", "decay_after", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ParameterError(f"tiger: setting {name!r} must be an integer >= 0, got {value!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ParameterError(f"tiger: setting 'dropout' must be in [0, 1), got {self.dropout!r}")
        if not float(self.lr) > 0:
            raise ParameterError(f"tiger: setting 'lr' must be > 0, got {self.lr!r}")
        if not float(self.checkpoint_minutes) > 0:
            raise ParameterError(f"tiger: setting 'checkpoint_minutes' must be > 0, got {self.checkpoint_minutes!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ParameterError(f"tiger: setting 'optimizer' must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ParameterError(f"tiger: setting 'schedule' must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if self.recipe not in RECIPES:
            raise ParameterError(f"tiger: setting 'recipe' must be one of {list(RECIPES)}, got {self.recipe!r}")
        if self.encoder_attention not in ENCODER_ATTENTION:
            raise ParameterError(
                f"tiger: setting 'encoder_attention' must be one of {list(ENCODER_ATTENTION)}, "
                f"got {self.encoder_attention!r}"
            )
        if self.recipe == "packed" and self.encoder_attention != "block_causal":
            raise ParameterError(
                "tiger: recipe 'packed' shares encoder states between targets and needs "
                "encoder_attention='block_causal'; use recipe='hybrid' or 'per_prefix' for 'full'"
            )
        if self.recipe == "hybrid" and self.encoder_attention != "full":
            raise ParameterError(
                "tiger: recipe 'hybrid' trains the bidirectional encoder used at inference and needs "
                "encoder_attention='full' (--set encoder_attention=full)"
            )
        return self

    # -- conversion ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TigerConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"tiger: unknown setting {unknown[0]!r}; valid settings: {', '.join(sorted(known))}")
        return cls(**dict(data))

    def with_assignments(self, assignments: Mapping[str, str]) -> "TigerConfig":
        """A copy with ``{"name": "text"}`` overrides from ``--set`` parsed to each field's type."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        values = self.to_dict()
        for key, text in assignments.items():
            if key not in fields:
                raise ParameterError(f"tiger: unknown setting {key!r}; valid settings: {', '.join(sorted(fields))}")
            kind = type(getattr(self, key))
            try:
                values[key] = kind(text) if kind is not bool else text.lower() in {"1", "true", "yes"}
            except ValueError:
                raise ParameterError(
                    f"tiger: setting {key!r} must be {kind.__name__}, got {text!r}"
                ) from None
        return TigerConfig.from_dict(values)
