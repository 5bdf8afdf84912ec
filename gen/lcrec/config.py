"""Settings of an LC-Rec run, stored in ``run.json`` and checked on ``--resume``."""

from __future__ import annotations

from dataclasses import dataclass

from semid.errors import ParameterError
from semid.evaluation.split import DEFAULT_MAX_HISTORY
from semid.params import above, at_least, in_half_open
from semid.settings import Settings, setting

from .tasks import ALL_TASKS, check_tasks

__all__ = ["LCRecConfig", "RESUMABLE_KEYS"]

#: Settings that may change when a run is resumed.
RESUMABLE_KEYS = frozenset({"budget_minutes", "checkpoint_minutes", "eval_batch_size", "num_beams"})


@dataclass
class LCRecConfig(Settings):
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

    owner = "lcrec"

    base_model: str | None = setting(None, "local causal LM folder (None: SmolLM2-135M-Instruct)", kind=str)
    tasks: tuple[str, ...] = setting(ALL_TASKS, "alignment tasks", kind=tuple)
    prompts: str = setting("lcrec_v1", "prompt set name or JSON path")
    method: str = setting("lora", "fine-tuning method", choices=("lora", "full"))
    dtype: str = setting("float32", "dtype of the base model", choices=("float32", "bfloat16", "float16"))
    lora_r: int = setting(8, "LoRA rank", check=at_least(1))
    lora_alpha: int | None = setting(None, "LoRA scale (None: 2 x rank)", kind=int, check=at_least(1))
    lora_dropout: float = setting(0.05, "LoRA dropout", check=in_half_open(0.0, 1.0))
    embed_init: str = setting("text", "initial rows of the code tokens", choices=("mean", "text"))
    epochs: int = setting(1, "passes over the instruction examples", check=at_least(1))
    batch_size: int = setting(8, "examples per optimizer step per process", check=at_least(1))
    grad_accum: int = setting(1, "micro-batches per optimizer step", check=at_least(1))
    learning_rate: float = setting(1e-3, "AdamW learning rate", check=lambda v: None if 0 < v < 1 else "must be in (0, 1)")
    weight_decay: float = setting(0.0, "AdamW weight decay", check=at_least(0.0))
    warmup_ratio: float = setting(0.05, "share of steps in linear warm-up", check=in_half_open(0.0, 1.0))
    max_length: int = setting(384, "longest example in tokens", check=at_least(1))
    max_history: int = setting(DEFAULT_MAX_HISTORY, "history items in a prompt", check=at_least(1))
    max_per_task: int | None = setting(None, "seeded sample of examples per task", kind=int, check=at_least(1))
    budget_minutes: float | None = setting(None, "wall-clock budget of this invocation", kind=float, check=above(0.0))
    checkpoint_minutes: float = setting(5.0, "minutes between checkpoints", check=above(0.0))
    num_beams: int = setting(20, "beams at inference", check=at_least(1))
    eval_batch_size: int = setting(4, "prompts decoded together", check=at_least(1))
    seed: int = setting(0, "seed of examples, templates, order and initialisation", check=at_least(0))

    def check_together(self) -> None:
        self.tasks = check_tasks(self.tasks)
        if self.batch_size % self.grad_accum:
            raise ParameterError(
                f"lcrec: batch_size {self.batch_size} must be a multiple of grad_accum {self.grad_accum}"
            )
