"""Turn a dataset and its leave-one-out split into the integer arrays CF models train on.

Item index convention shared by every CF model here: dataset row ``i`` (the order
of :attr:`semid.ItemTable.item_ids`) is model item ``i + 1``; index ``0`` is
padding. So row ``i`` of an exported embedding matrix is ``item_ids[i]``.

Only the *training* part of the split is used for learning (``s[:-2]`` per
user under leave-one-out, see :func:`semid.evaluation.leave_one_out`, or the
train part of a random hold-out, :func:`semid.evaluation.random_holdout`);
validation and test items never enter a gradient.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from semid.data.dataset import Dataset
from semid.errors import UnknownItemError
from semid.evaluation import Holdout, leave_one_out

__all__ = ["CFData", "fingerprint_ids", "prepare_cf_data"]


def fingerprint_ids(ids: Sequence[str]) -> str:
    """sha256 (hex) of ids joined by newlines: identifies an item (or user) order."""
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


@dataclass
class CFData:
    """Training view of a dataset for CF models.

    Attributes:
        item_ids: dataset item order; model index ``i + 1`` is ``item_ids[i]``.
        user_ids: dataset user order; user index ``u`` is ``user_ids[u]``.
        train_sequences: per user, training items as model indexes (``int64``,
            1-based, oldest first; may be empty).
        items_fingerprint: :func:`fingerprint_ids` of ``item_ids``.
        train_fingerprint: sha256 over the training sequences (changes when the
            data a model learned from changes).
    """

    item_ids: list[str]
    user_ids: list[str]
    train_sequences: list[np.ndarray]
    items_fingerprint: str
    train_fingerprint: str

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def item_index(self) -> dict[str, int]:
        """``item_id -> 1-based model index``."""
        return {item: i + 1 for i, item in enumerate(self.item_ids)}

    def interactions(self) -> tuple[np.ndarray, np.ndarray]:
        """Unique training (user, item) pairs: two ``int64 (n_pairs,)`` arrays, item 1-based."""
        users = np.concatenate(
            [np.full(len(s), u, dtype=np.int64) for u, s in enumerate(self.train_sequences)] or [np.zeros(0, np.int64)]
        )
        items = np.concatenate(self.train_sequences or [np.zeros(0, np.int64)]).astype(np.int64)
        pairs = np.unique(users * (self.n_items + 1) + items)
        return pairs // (self.n_items + 1), pairs % (self.n_items + 1)


def prepare_cf_data(dataset: Dataset, holdout: Holdout | None = None) -> CFData:
    """Index the training part of ``dataset``'s leave-one-out split (or of ``holdout``, when given)."""
    if holdout is None:
        split = leave_one_out(dataset)
        users, train = split.train_users, split.train_sequences
    else:
        users, train = holdout.user_ids, holdout.train
    index = {item: i + 1 for i, item in enumerate(dataset.items.item_ids)}
    sequences = [np.asarray([index[i] for i in seq], dtype=np.int64) for seq in train]
    digest = hashlib.sha256()
    for user, seq in zip(users, sequences):
        digest.update(user.encode("utf-8") + b"\t" + seq.tobytes() + b"\n")
    return CFData(
        item_ids=list(dataset.items.item_ids),
        user_ids=list(users),
        train_sequences=sequences,
        items_fingerprint=fingerprint_ids(dataset.items.item_ids),
        train_fingerprint=digest.hexdigest(),
    )


def histories_to_indexes(
    histories: Sequence[Sequence[str]], index: dict[str, int], max_len: int
) -> np.ndarray:
    """Left-padded ``int64 (n, max_len)`` index matrix of the most recent ``max_len`` items.

    Raises:
        UnknownItemError: a history names an item the model was not trained with.
    """
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for row, history in enumerate(histories):
        recent = list(history)[-max_len:]
        try:
            values = [index[item] for item in recent]
        except KeyError as exc:
            raise UnknownItemError(
                f"history #{row + 1} names item {exc.args[0]!r}, which this CF model was not trained with"
            ) from None
        if values:
            out[row, max_len - len(values):] = values
    return out
