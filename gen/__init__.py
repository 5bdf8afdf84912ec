"""Generators that consume a semid index: TIGER, LC-Rec, decoding, CF baselines.

Heavy dependencies (torch, transformers, peft) are imported by the submodules
that need them, not here.
"""

__all__: list[str] = []
