"""``check_tokenizer``: the conformance checks every scheme must pass.

Like scikit-learn's ``check_estimator``, this is public so a third-party
scheme can prove it behaves like the built-in ones::

    from semid.testing import check_tokenizer
    check_tokenizer("collaborative", items, train_sequences, workdir=tmp_path)

Each check raises ``AssertionError`` with a message naming the scheme and
what differed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data.dataset import ItemTable
from .errors import ColdStartUnsupportedError, NotFittedError, UnknownCodeError, UnknownItemError
from .registry import load, make
from .tokenizer import ItemTokenizer

__all__ = ["check_tokenizer"]


def _fail(scheme: str, message: str) -> None:
    raise AssertionError(f"[{scheme}] {message}")


def _directory_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def check_tokenizer(
    scheme: str,
    items: ItemTable,
    sequences: Sequence[Sequence[str]] | None,
    *,
    workdir: str | Path,
    params: dict[str, Any] | None = None,
    embeddings: np.ndarray | None = None,
    cf_embeddings: np.ndarray | None = None,
) -> ItemTokenizer:
    """Fit ``scheme`` and run every interface check; returns the fitted tokenizer.

    Checks: fit returns self; one unique code per item; encode/decode round trip
    (single, batch, token strings); the trie holds exactly the codes and their
    prefixes; errors for unknown items/codes and before fit; cold start either
    works or raises ColdStartUnsupportedError; save -> load gives the same codes,
    vocab and fingerprint; fitting twice with the same seed writes byte-identical
    directories.
    """
    workdir = Path(workdir)
    params = dict(params or {})
    fit_kwargs = {"embeddings": embeddings, "cf_embeddings": cf_embeddings}

    unfitted = make(scheme, **params)
    try:
        unfitted.encode(items.item_ids[0])
    except NotFittedError:
        pass
    else:
        _fail(scheme, "encode before fit did not raise NotFittedError")

    tokenizer = make(scheme, **params)
    if tokenizer.fit(items, sequences, **fit_kwargs) is not tokenizer:
        _fail(scheme, "fit() must return self")
    ids = items.item_ids
    codes = tokenizer.encode_batch(ids)
    if len(set(codes)) != len(ids):
        _fail(scheme, f"{len(ids) - len(set(codes))} items share a code")
    if any(not c or any(v < 0 for v in c) for c in codes):
        _fail(scheme, "a code is empty or holds a negative value")

    # Round trips: tuple, token string, batch.
    if tokenizer.decode_batch(codes) != ids:
        _fail(scheme, "decode_batch(encode_batch(ids)) != ids")
    for item, code in zip(ids, codes):
        text = tokenizer.vocab.render(code)
        if tokenizer.vocab.parse(text) != code or tokenizer.decode(text) != item:
            _fail(scheme, f"render/parse round trip failed for {item!r}: {text}")

    # The trie holds exactly the codes and their prefixes.
    trie = tokenizer.trie
    stored = {code: position for code, position in trie.iter_codes()}
    if set(stored) != set(codes) or any(ids[p] != tokenizer.decode(c) for c, p in stored.items()):
        _fail(scheme, "trie codes differ from the encoded codes")
    prefixes = {code[:k] for code in codes for k in range(len(code) + 1)}
    for prefix in prefixes:
        if not trie.is_prefix(prefix):
            _fail(scheme, f"valid prefix {prefix} missing from the trie")
    rng = np.random.default_rng(0)
    for code in itertools.islice(codes, 50):
        level = int(rng.integers(len(code)))
        size = tokenizer.vocab.level_sizes[level]
        allowed = set(trie.allowed(code[:level]).tolist())
        for value in rng.integers(0, size, 5).tolist():
            is_prefix = code[:level] + (value,) in prefixes
            if is_prefix != (value in allowed):
                _fail(scheme, f"trie.allowed({code[:level]}) disagrees with the codes about {value}")

    # Errors.
    try:
        tokenizer.encode("\x00 no such item \x00")
    except UnknownItemError:
        pass
    else:
        _fail(scheme, "encode of an unknown item did not raise UnknownItemError")
    bogus = tuple(s - 1 for s in tokenizer.vocab.level_sizes) + (0,)
    try:
        tokenizer.decode(bogus)
    except UnknownCodeError:
        pass
    else:
        _fail(scheme, f"decode of non-code {bogus} did not raise UnknownCodeError")
    if not tokenizer.supports_cold_start:
        try:
            tokenizer.encode_new(items.records[0])
        except ColdStartUnsupportedError:
            pass
        else:
            _fail(scheme, "scheme without cold start did not raise ColdStartUnsupportedError")

    # Persistence and determinism.
    first = tokenizer.save(workdir / f"{scheme}-a")
    loaded = load(first)
    if loaded.fingerprint != tokenizer.fingerprint or loaded.vocab != tokenizer.vocab:
        _fail(scheme, "save/load changed the fingerprint or vocab")
    if not np.array_equal(loaded.codes, tokenizer.codes) or loaded.encode_batch(ids) != codes:
        _fail(scheme, "save/load changed the codes")
    if loaded.get_params() != tokenizer.get_params():
        _fail(scheme, f"save/load changed the params: {loaded.get_params()} != {tokenizer.get_params()}")
    again = make(scheme, **params).fit(items, sequences, **fit_kwargs)
    second = again.save(workdir / f"{scheme}-b")
    if _directory_bytes(first) != _directory_bytes(second):
        differing = [n for n, b in _directory_bytes(first).items() if _directory_bytes(second).get(n) != b]
        _fail(scheme, f"same inputs and seed gave different artifact files: {differing}")
    return tokenizer
