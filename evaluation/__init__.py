"""Evaluation: the leave-one-out protocol, full-ranking metrics, index diagnostics."""

from .baselines import MostPopular, RandomItems
from .beyond import beyond_accuracy_metrics
from .evaluate import Recommender, evaluate, evaluate_cases
from .metrics import DEFAULT_KS, hit_ranks, ranking_metrics
from .split import EvalCase, LeaveOneOut, leave_one_out, sample_cases

__all__ = [
    "DEFAULT_KS",
    "EvalCase",
    "LeaveOneOut",
    "MostPopular",
    "RandomItems",
    "Recommender",
    "beyond_accuracy_metrics",
    "evaluate",
    "evaluate_cases",
    "hit_ranks",
    "leave_one_out",
    "ranking_metrics",
    "sample_cases",
]
