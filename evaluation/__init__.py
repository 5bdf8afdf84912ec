"""Evaluation: the leave-one-out and random hold-out protocols, full-ranking metrics, index diagnostics."""

from .baselines import MostPopular, RandomItems
from .beyond import beyond_accuracy_metrics
from .evaluate import Recommender, evaluate, evaluate_cases
from .holdout import Holdout, evaluate_holdout, holdout_metrics, random_holdout
from .metrics import DEFAULT_KS, hit_ranks, metrics_by_target_count, ranking_metrics
from .split import EvalCase, LeaveOneOut, leave_one_out, sample_cases

__all__ = [
    "DEFAULT_KS",
    "EvalCase",
    "Holdout",
    "LeaveOneOut",
    "MostPopular",
    "RandomItems",
    "Recommender",
    "beyond_accuracy_metrics",
    "evaluate",
    "evaluate_cases",
    "evaluate_holdout",
    "hit_ranks",
    "holdout_metrics",
    "leave_one_out",
    "metrics_by_target_count",
    "random_holdout",
    "ranking_metrics",
    "sample_cases",
]
