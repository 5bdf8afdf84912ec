"""TALLRec (Bao et al., RecSys 2023): yes/no rec-tuning of a causal LM with LoRA, scored by AUC."""

from .data import ALPACA_TEMPLATE, TallRecSample, build_samples, render_prompt, split_samples
from .train import TallRecConfig, evaluation_subsets, train_tallrec, yes_no_token_ids, yes_probability

__all__ = [
    "ALPACA_TEMPLATE",
    "TallRecConfig",
    "TallRecSample",
    "build_samples",
    "evaluation_subsets",
    "render_prompt",
    "split_samples",
    "train_tallrec",
    "yes_no_token_ids",
    "yes_probability",
]
