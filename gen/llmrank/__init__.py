"""LLMRank (zero-shot candidate ranking by a language model) over semid items; see :mod:`.ranker`."""

from .prompts import DOMAINS, PROMPTS, build_prompt
from .ranker import LLMRankSettings, llmrank_evaluate, rank_candidates

__all__ = ["DOMAINS", "LLMRankSettings", "PROMPTS", "build_prompt", "llmrank_evaluate", "rank_candidates"]
