"""LC-Rec: a causal LLM tuned to generate semantic-ID tokens (Zheng et al. 2024).

``train_lcrec`` builds alignment-task instructions from a dataset and an index,
adds the index's code tokens to a local causal LM and tunes it (LoRA with
trainable code-token rows, or full tuning); ``load_lcrec_run`` turns the run
directory into a recommender with trie-constrained beam search or D3 decoding.
torch/transformers load only when these functions are called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "ALL_TASKS",
    "LCRecConfig",
    "LCRecRecommender",
    "build_examples",
    "load_lcrec_model",
    "load_lcrec_run",
    "load_prompts",
    "load_recommender",
    "train_lcrec",
]

from .config import LCRecConfig
from .tasks import ALL_TASKS, build_examples
from .templates import load_prompts

if TYPE_CHECKING:
    from .recommender import LCRecRecommender
    from .run import load_lcrec_model, load_lcrec_run, load_recommender
    from .train import train_lcrec


def __getattr__(name: str) -> Any:
    # torch-backed parts load lazily, so `import semid.gen.lcrec` (and the CLI) stays light.
    if name == "LCRecRecommender":
        from .recommender import LCRecRecommender

        return LCRecRecommender
    if name in ("load_lcrec_model", "load_lcrec_run", "load_recommender"):
        from . import run

        return getattr(run, name)
    if name == "train_lcrec":
        from .train import train_lcrec

        return train_lcrec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
