"""LLaRA (Liao et al., SIGIR 2024): titles plus projected collaborative embeddings, curriculum, LoRA."""

from .train import CANDIDATE, HISTORY, TEXT_ONLY, LLaRAConfig, train_llara

__all__ = ["CANDIDATE", "HISTORY", "LLaRAConfig", "TEXT_ONLY", "train_llara"]
