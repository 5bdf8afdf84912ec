"""Settings of an LC-Rec run, stored in ``run.json`` and checked on ``--resume``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from semid.evaluation.split import DEFAULT_MAX_HISTORY
from semid.errors import ParameterError

from .tasks import ALL_TASKS, check_tasks

__all__ = ["LCRecConfig", "RESUMABLE_KEYS"]

#: Settings that may change when a run is resumed.
RESUMABLE_KEYS = frozenset({"budget_minutes", "checkpoint_minutes", "eval_batch_size", "num_beams"})


@dataclass
class LCRecConfig:
    """Everything that defines an LC-Rec training run.

    Attributes:
        base_model: local Hugging Face folder of a causal LM (``None``: SmolLM2-135M-Instruct).
        tasks: alignment tasks (see :mod:`semid.gen.lcrec.tasks`).
        prompts: packaged prompt set name or JSON path.
        method: ``"lora"`` or ``"full"`` fine-tuning.
        dtype: torch dtype the base model is loaded in (``"bfloat16"`` on GPUs).
        lora_r, lora_alpha, lora_dropout: LoRA rank, scale, dropout.
        embed_init: initialisation of the new code-token rows (``"mean"`` / ``"text"``).
        epochs: passes over the instruction examples.
        batch_size: examples per optimizer step per process (after accumulation).
        grad_accum: micro-batches per optimizer step.
        learning_rate, weight_decay, warmup_ratio: AdamW with linear warmup and decay.
        max_length: longest tokenised example (prompt + response); longer prompts
            lose their oldest history items.
        max_history: most recent items put in a history prompt.
        max_per_task: seeded sample of at most this many examples per task.
        budget_minutes: wall-clock budget of this invocation, model loading included.
        checkpoint_minutes: save a resumable checkpoint this often.
        num_beams: beams of constrained decoding at inference.
        eval_batch_size: prompts decoded together at inference.
        seed: seeds example building, template choice, order and initialisation.
    """

    base_model: str | None = None
    tasks: tuple[str, ...] = ALL_TASKS
    prompts: str = "lcrec_v1"
    method: str = "lora"
    dtype: str = "float32"
    lora_r: int = 8
    lora_alpha: int | None = None
    lora_dropout: float = 0.05
    embed_init: str = "text"
    epochs: int = 1
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    max_length: int = 384
    max_history: int = DEFAULT_MAX_HISTORY
    max_per_task: int | None = None
    budget_minutes: float | None = None
    checkpoint_minutes: float = 5.0
    num_beams: int = 20
    eval_batch_size: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        self.tasks = check_tasks(self.tasks)
        positive = ("lora_r", "epochs", "batch_size", "grad_accum", "max_length", "max_history", "num_beams",
                    "eval_batch_size")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ParameterError(f"LC-Rec setting {name!r} must be a positive integer, got {value!r}")
        if self.batch_size % self.grad_accum:
            raise ParameterError(
                f"batch_size {self.batch_size} must be a multiple of grad_accum {self.grad_accum}"
            )
        if self.max_per_task is not None and self.max_per_task < 1:
            raise ParameterError(f"max_per_task must be >= 1 or None, got {self.max_per_task}")
        if self.budget_minutes is not None and self.budget_minutes <= 0:
            raise ParameterError(f"budget_minutes must be > 0, got {self.budget_minutes}")
        if not 0 < self.learning_rate < 1:
            raise ParameterError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ParameterError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")
        if self.method not in ("lora", "full"):
            raise ParameterError(f"method must be 'lora' or 'full', got {self.method!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tasks"] = list(self.tasks)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LCRecConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"unknown LC-Rec setting {unknown[0]!r}; valid: {', '.join(sorted(known))}")
        data = dict(data)
        if "tasks" in data:
            data["tasks"] = tuple(data["tasks"])
        return cls(**data)
