"""semid: item tokenizers (semantic IDs) for generative recommendation.

>>> import semid
>>> from semid.evaluation import leave_one_out
>>> data = semid.load_dataset("builtin:all_beauty_2023")
>>> split = leave_one_out(data)                  # training sequences: every user's s[:-2]
>>> tok = semid.make("collaborative", n_clusters=10, max_group_size=50)
>>> tok = tok.fit(data.items, split.train_sequences)
>>> item = data.items.item_ids[0]
>>> code = tok.encode(item)                      # a tuple of ints, one per level
>>> tok.decode(code) == item
True
>>> tok.vocab.render(code).startswith("<a_")
True

Generators live in :mod:`semid.gen`, metrics in :mod:`semid.evaluation`, the
command line in :mod:`semid.cli`. ``import semid`` stays light: torch and
transformers load only where a scheme or model needs them.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .data import Dataset, ItemTable, Sequences, builtin_datasets, load_dataset, save_dataset
from .errors import (
    ArtifactError,
    CodeFormatError,
    ColdStartUnsupportedError,
    DataError,
    MissingFieldError,
    NotFittedError,
    ParameterError,
    SemidError,
    UnknownCodeError,
    UnknownItemError,
)
from .registry import available_schemes, load, make
from .tokenizer import Code, ItemTokenizer
from .trie import CodeTrie
from .vocab import CodeVocab

__all__ = [
    "ArtifactError",
    "Code",
    "CodeFormatError",
    "CodeTrie",
    "CodeVocab",
    "ColdStartUnsupportedError",
    "DataError",
    "Dataset",
    "ItemTable",
    "ItemTokenizer",
    "MissingFieldError",
    "NotFittedError",
    "ParameterError",
    "SemidError",
    "Sequences",
    "UnknownCodeError",
    "UnknownItemError",
    "__version__",
    "available_schemes",
    "builtin_datasets",
    "load",
    "load_dataset",
    "make",
    "save_dataset",
]
