"""The training layer every semid trainer shares (see :mod:`semid.gen.training.loop`).

A new generator brings a :class:`Trainable` (model, batches, loss, validation,
checkpoint writers) and gets resumable epochs, validation with best/last
checkpoints, early stopping, one time budget, one stop vocabulary and
multi-process agreement from :func:`train_loop`.
"""

from .devices import check_device
from .distributed import Distributed, init_distributed
from .loop import Trainable, summarize, train_loop
from .precision import PRECISIONS, autocast, cpu_has_bf16, keep_float32
from .schedules import Schedule
from .stopping import STOP_REASONS, Budget, LoopSettings, LoopState
from .torch_state import load_torch_state, torch_state_writer

__all__ = [
    "PRECISIONS",
    "STOP_REASONS",
    "Budget",
    "Distributed",
    "LoopSettings",
    "LoopState",
    "Schedule",
    "Trainable",
    "autocast",
    "check_device",
    "cpu_has_bf16",
    "init_distributed",
    "keep_float32",
    "load_torch_state",
    "summarize",
    "torch_state_writer",
    "train_loop",
]
