"""InstructRec (Zhang et al., 2023), re-implemented from the paper: instruction mixture, LoRA, reranking."""

from .train import FORMS, InstructRecConfig, build_instruction, train_instructrec

__all__ = ["FORMS", "InstructRecConfig", "build_instruction", "train_instructrec"]
