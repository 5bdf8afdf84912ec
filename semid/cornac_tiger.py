"""cornac's TIGER trained on a semid index (``pip install cornac``; imported only when used).

cornac's :class:`cornac.models.TIGER` reads no code file: it quantizes item features inside
``fit`` and keeps the table in the model. :class:`SemidTIGER` is that model with its tokenizer
step replaced by an index's codes, aligned to cornac's internal item ids through its
``iid_map``; everything else (cornac's collision level, seq2seq training, beam or exact scoring,
``save`` / ``load``) is cornac's own. The reverse direction, a fitted or saved cornac TIGER into a
semid index, is :func:`semid.interop.read_cornac` (``semid import-index --format cornac``).

    from semid.cornac_tiger import SemidTIGER
    model = SemidTIGER(semid.load("idx/rqkmeans"), n_epochs=10, device="cpu")
    cornac.Experiment(eval_method=next_item_eval, models=[model], metrics=[...]).run()
"""

from __future__ import annotations

import numpy as np
from cornac.models import TIGER

from .interop import codes_in_cornac_order
from .tokenizer import ItemTokenizer

__all__ = ["SemidTIGER"]


class SemidTIGER(TIGER):
    """cornac's TIGER whose semantic IDs are ``index``'s codes (fixed length; cornac adds its collision level).

    Args:
        index: a fitted semid index covering every item cornac knows (by raw item id).
        name: the model's name in cornac's reports.
        **params: any other :class:`cornac.models.TIGER` parameter. ``rqvae_*`` settings are unused;
            the number of levels and the codebook size are the index's.
    """

    def __init__(self, index: ItemTokenizer | None = None, name: str = "SemidTIGER", **params):
        params["tokenizer"] = "rkmeans"  # cornac then trains and keeps no RQ-VAE; _tokenize is replaced below
        super().__init__(name=name, **params)
        self.index_codes = None if index is None else dict(zip(index.item_ids, np.asarray(index.codes).tolist()))
        self.index_fingerprint = None if index is None else index.fingerprint

    def _get_item_features(self):
        # cornac requires content features only to tokenize; the codes here come from the index
        if getattr(getattr(self.train_set, "item_feature", None), "features", None) is None:
            return np.zeros((self.total_items, 1), dtype="float32")
        return super()._get_item_features()

    def _tokenize(self, torch, feats_t):
        if self.index_codes is None:
            raise ValueError("SemidTIGER needs a semid index: SemidTIGER(index, ...)")
        codes = codes_in_cornac_order(self.index_codes, self.iid_map, self.total_items)
        self.rqvae_num_levels = codes.shape[1]
        self.rqvae_codebook_size = int(codes.max()) + 1  # cornac sizes every level alike
        return codes
