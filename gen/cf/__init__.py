"""Collaborative-filtering recommenders: SASRec, LightGCN and AlphaRec.

They are baselines every generative model is compared with, and the source of
the CF item embeddings that LETTER (and LLaRA, RLMRec, ...) take as input.
AlphaRec (ICLR 2025) learns only an MLP from frozen title embeddings into a
LightGCN space, so it also recommends zero-shot on unseen datasets; RLMRec
aligns LightGCN with language profiles. All train on the training part of the
leave-one-out split (evaluated with :func:`semid.evaluation.evaluate`) or of the
graph-CF papers' random hold-out (:class:`SplitProtocol`,
:func:`semid.evaluation.evaluate_holdout`), full ranking either way.

>>> from semid.gen.cf import TrainOptions, train_cf
>>> train_cf("runs/sasrec", dataset, model_name="sasrec", options=TrainOptions(max_epochs=50))  # doctest: +SKIP
"""

from .alpharec import AlphaRec, AlphaRecConfig, zero_shot_recommender
from .data import CFData, fingerprint_ids, prepare_cf_data
from .export import export_item_embeddings, item_embeddings
from .lightgcn import LightGCN, LightGCNConfig
from .models import MODELS, build_config, build_model
from .protocol import SplitProtocol
from .recommender import CFRecommender
from .rlmrec import RLMRec, RLMRecConfig, write_profiles
from .run import load_run, read_config
from .sasrec import SASRec, SASRecConfig
from .train import TrainOptions, train_cf

__all__ = [
    "AlphaRec",
    "AlphaRecConfig",
    "CFData",
    "CFRecommender",
    "LightGCN",
    "LightGCNConfig",
    "MODELS",
    "RLMRec",
    "RLMRecConfig",
    "SASRec",
    "SASRecConfig",
    "SplitProtocol",
    "TrainOptions",
    "build_config",
    "build_model",
    "export_item_embeddings",
    "fingerprint_ids",
    "item_embeddings",
    "load_run",
    "prepare_cf_data",
    "read_config",
    "train_cf",
    "write_profiles",
    "zero_shot_recommender",
]
