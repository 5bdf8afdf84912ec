"""TIGER's model vocabulary: how item codes and users become token ids.

The layout is fixed and shared with :mod:`semid.gen.decoding`::

    0                         pad (also the decoder start token)
    1                         EOS
    2 .. 2 + n_code - 1       code tokens: 2 + vocab.token_id(level, index)
    2 + n_code .. + buckets   user tokens (encoder side only), sha256(user id) % buckets

When an index has codes of different lengths, every item code is followed by
EOS, on the encoder side (so item boundaries are explicit) and as the last
decoder target (so the decoder can stop at a code that is a prefix of another).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from semid.errors import UnknownItemError

__all__ = ["CODE_OFFSET", "EOS_ID", "PAD_ID", "TokenLayout"]

# One definition of the seq2seq token layout, shared with the decoders.
from ..decoding.tables import EOS_TOKEN_ID as EOS_ID  # noqa: E402
from ..decoding.tables import FIRST_CODE_TOKEN_ID as CODE_OFFSET  # noqa: E402
from ..decoding.tables import PAD_TOKEN_ID as PAD_ID  # noqa: E402


class TokenLayout:
    """Token ids for one index (a fitted :class:`semid.ItemTokenizer`).

    Attributes:
        n_code_tokens: distinct code tokens (``vocab.n_tokens``).
        user_offset: id of user bucket 0.
        user_buckets: number of user tokens (0: no user token).
        vocab_size: size of the model's embedding table.
        append_eos: codes have different lengths, so EOS follows each code.
        max_target_len: longest decoder target, EOS included.
        item_tokens: per item position, its token ids ``int64 (len,)``.
    """

    def __init__(self, tokenizer, user_buckets: int):
        vocab = tokenizer.vocab
        codes = tokenizer.codes
        self.n_code_tokens = int(vocab.n_tokens)
        self.user_offset = CODE_OFFSET + self.n_code_tokens
        self.user_buckets = int(user_buckets)
        self.vocab_size = self.user_offset + max(self.user_buckets, 1)
        self.append_eos = not tokenizer.trie.fixed_length
        self.item_ids = list(tokenizer.item_ids)
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}
        offsets = np.asarray(vocab.level_offsets(), dtype=np.int64)
        #: model token id where each code level starts, then the end of the last level
        self.level_bounds = [int(CODE_OFFSET + o) for o in offsets] + [CODE_OFFSET + self.n_code_tokens]
        lengths = (codes >= 0).sum(axis=1)
        self.item_tokens: list[np.ndarray] = []
        for row, length in zip(codes.astype(np.int64), lengths):
            ids = CODE_OFFSET + offsets[:length] + row[:length]
            if self.append_eos:
                ids = np.append(ids, EOS_ID)
            self.item_tokens.append(ids)
        self.code_length = int(lengths.max())
        self.max_target_len = self.code_length + int(self.append_eos)

    def position(self, item_id: str) -> int:
        """Row of ``item_id`` in the index; raises :class:`UnknownItemError`."""
        try:
            return self.item_index[item_id]
        except KeyError:
            raise UnknownItemError(f"history item {item_id!r} is not in the index this model was trained on") from None

    def positions(self, item_ids: Sequence[str]) -> list[int]:
        return [self.position(item) for item in item_ids]

    def user_token(self, user_id: str | None) -> int | None:
        """The hashed user token (stable across processes), or None without user tokens."""
        if self.user_buckets == 0 or user_id is None:
            return None
        digest = hashlib.sha256(user_id.encode("utf-8")).digest()
        return self.user_offset + int.from_bytes(digest[:8], "little") % self.user_buckets

    def encoder_ids(self, positions: Sequence[int], user_id: str | None) -> np.ndarray:
        """Encoder input for a history: ``[user] + codes of the items``, ``int64 (S,)``."""
        parts = [self.item_tokens[p] for p in positions]
        user = self.user_token(user_id)
        if user is not None:
            parts.insert(0, np.asarray([user], dtype=np.int64))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def mask_settings(self) -> dict[str, int | bool]:
        """What the model needs to find item boundaries in encoder input ids."""
        return {
            "tiger_code_offset": CODE_OFFSET,
            "tiger_user_offset": self.user_offset,
            "tiger_code_length": self.code_length,
            "tiger_eos_separated": self.append_eos,
            "tiger_level_bounds": list(self.level_bounds),
        }
