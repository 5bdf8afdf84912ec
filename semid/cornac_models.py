"""cornac's generative recommenders trained on a semid index (``pip install cornac``; imported only when used).

cornac's TIGER, LETTER, RPG and DiffGRM (cornac >= 3.0) read no code file: each makes its semantic
IDs inside ``fit`` from item features and keeps the table (``sid_table``) in the model. The classes
here are those models with that one step replaced by a semid index's codes, aligned to cornac's
internal item ids through its ``iid_map``; everything else (training, scoring, cornac's own
collision handling, ``save`` / ``load``) is cornac's. The reverse direction, any fitted or saved one
into a semid index, is :func:`semid.interop.read_cornac` (``semid import-index --format cornac-*``).

    from semid.cornac_models import SemidRPG
    model = SemidRPG(semid.load("idx/pq32"), n_epochs=10, device="cpu")
    cornac.Experiment(eval_method=next_item_eval, models=[model], metrics=[...]).run()
"""

from __future__ import annotations

import numpy as np
from cornac.models import LETTER, RPG, TIGER, DiffGRM

from .interop import codes_in_cornac_order
from .tokenizer import ItemTokenizer

__all__ = ["SemidDiffGRM", "SemidLETTER", "SemidRPG", "SemidTIGER"]


class _SemidCodes:
    """What every adapter shares: the index's codes by raw item id, and them in cornac's order at fit time.

    Args:
        index: a fitted semid index covering every item cornac knows (by raw item id).
        name: the model's name in cornac's reports (default: the adapter's class name).
        **params: any other parameter of the cornac model; its tokenizer settings are unused, the
            number of levels and the codebook size are the index's.
    """

    def __init__(self, index: ItemTokenizer | None = None, name: str | None = None, **params):
        super().__init__(name=name or type(self).__name__, **self._cornac_params(params))
        self.index_codes = None if index is None else dict(zip(index.item_ids, np.asarray(index.codes).tolist()))
        self.index_fingerprint = None if index is None else index.fingerprint

    def _cornac_params(self, params: dict) -> dict:
        return params

    def _semid_table(self) -> np.ndarray:
        if self.index_codes is None:
            raise ValueError(f"{type(self).__name__} needs a semid index: {type(self).__name__}(index, ...)")
        return codes_in_cornac_order(self.index_codes, self.iid_map, self.total_items)

    def _get_item_features(self):
        # cornac requires content features only to tokenize; the codes here come from the index
        if getattr(getattr(self.train_set, "item_feature", None), "features", None) is None:
            return np.zeros((self.total_items, 1), dtype="float32")
        return super()._get_item_features()


class SemidTIGER(_SemidCodes, TIGER):
    """cornac's TIGER on the index's codes (cornac appends its collision level)."""

    def _cornac_params(self, params: dict) -> dict:
        return {**params, "tokenizer": "rkmeans"}  # cornac then trains and keeps no RQ-VAE

    def _tokenize(self, torch, feats_t):
        codes = self._semid_table()
        self.rqvae_num_levels, self.rqvae_codebook_size = codes.shape[1], int(codes.max()) + 1
        return codes


class SemidLETTER(_SemidCodes, LETTER):
    """cornac's LETTER recommender on the index's codes (through its ``precomputed_semantic_ids``)."""

    def _tokenize(self, torch, feats_t):
        codes = self._semid_table()
        self.precomputed_semantic_ids = codes
        self.rqvae_num_levels, self.rqvae_codebook_size = codes.shape[1], int(codes.max()) + 1
        return super()._tokenize(torch, feats_t)


class SemidRPG(_SemidCodes, RPG):
    """cornac's RPG on the index's codes (any fixed length; cornac's OPQ tokenizer is not run)."""

    def _opq_tokenize(self, feats, train_mask=None):
        codes = self._semid_table()
        self.n_codebook, self.codebook_size = codes.shape[1], int(codes.max()) + 1
        return codes


class SemidDiffGRM(_SemidCodes, DiffGRM):
    """cornac's DiffGRM on the index's codes (through its ``item_sids``)."""

    def _prepare_semantic_ids(self):
        codes = self._semid_table()
        self.item_sids = codes
        self.n_digit, self.codebook_size = codes.shape[1], int(codes.max()) + 1
        return super()._prepare_semantic_ids()
