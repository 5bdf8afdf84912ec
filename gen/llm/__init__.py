"""Shared helpers for LLM-based generators: base model loading, code tokens, LoRA.

Submodules import torch/transformers/peft; this package file does not.
"""

__all__: list[str] = []
