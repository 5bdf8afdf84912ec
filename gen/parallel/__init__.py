"""A parallel semantic-ID generator (RPG, KDD 2025): all codes of the next item at once, exact full ranking."""

from .model import ParallelConfig, ParallelModel, build_code_graph, item_code_tokens
from .train import ParallelRecommender, load_recommender, train_parallel

__all__ = ["ParallelConfig", "ParallelModel", "ParallelRecommender", "build_code_graph", "item_code_tokens",
           "load_recommender",
           "train_parallel"]
