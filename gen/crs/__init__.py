"""Conversational recommendation with LLMs over ReDIAL (zero-shot, He et al., CIKM 2023)."""

from .redial import ReDIAL, Turn, entity_title, load_redial
from .zero_shot import PROMPT, crs_evaluate, extract_names, map_to_catalogue, score_rows

__all__ = ["PROMPT", "ReDIAL", "Turn", "crs_evaluate", "entity_title", "extract_names", "load_redial",
           "map_to_catalogue", "score_rows"]
