"""Property tests (hypothesis) for token strings and the code trie."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semid.errors import CodeFormatError, ParameterError
from semid.trie import CodeTrie, pad_codes
from semid.vocab import CodeVocab, default_prefixes


@st.composite
def vocab_and_code(draw):
    n_levels = draw(st.integers(1, 6))
    sizes = draw(st.lists(st.integers(1, 300), min_size=n_levels, max_size=n_levels))
    length = draw(st.integers(1, n_levels))
    code = tuple(draw(st.integers(0, sizes[level] - 1)) for level in range(length))
    return CodeVocab(sizes), code


@given(vocab_and_code())
def test_render_parse_round_trip(case):
    vocab, code = case
    text = vocab.render(code)
    assert vocab.parse(text) == code
    assert vocab.parse(" ".join(vocab.render_tokens(code))) == code
    ids = vocab.token_ids(code)
    assert all(0 <= i < vocab.n_tokens for i in ids)
    assert [vocab.tokens()[i] for i in ids] == vocab.render_tokens(code)


@given(vocab_and_code(), st.integers(0, 5))
def test_parse_rejects_out_of_range_and_wrong_prefix(case, level):
    vocab, code = case
    level = level % vocab.n_levels
    with pytest.raises(CodeFormatError):
        vocab.parse(f"<{vocab.prefixes[level]}_{vocab.level_sizes[level]}>" if level == 0 else "<zz_0>")
    with pytest.raises(CodeFormatError):
        vocab.parse(vocab.render(code) + "garbage")
    with pytest.raises(CodeFormatError):
        vocab.parse("")


def test_default_prefixes_are_unique_beyond_26_levels():
    prefixes = default_prefixes(60)
    assert len(set(prefixes)) == 60 and prefixes[:3] == ("a", "b", "c") and prefixes[26] == "aa"


def test_shared_prefix_levels_share_token_ids():
    vocab = CodeVocab([5, 5, 3], ["t", "t", "x"])
    assert vocab.n_tokens == 8
    assert vocab.token_id(0, 2) == vocab.token_id(1, 2)
    with pytest.raises(ParameterError):
        CodeVocab([5, 4], ["t", "t"])


@st.composite
def code_sets(draw):
    n_levels = draw(st.integers(1, 4))
    size = draw(st.integers(2, 6))
    variable = draw(st.booleans())
    raw = draw(
        st.lists(
            st.lists(st.integers(0, size - 1), min_size=1 if variable else n_levels, max_size=n_levels),
            min_size=1, max_size=40, unique_by=tuple,
        )
    )
    return [tuple(c) for c in raw], n_levels, size


@settings(max_examples=150, deadline=None)
@given(code_sets())
def test_trie_holds_exactly_the_codes_and_their_prefixes(case):
    codes, n_levels, size = case
    trie = CodeTrie(pad_codes(codes))
    assert {c: p for c, p in trie.iter_codes()} == {c: i for i, c in enumerate(codes)}
    prefixes = {c[:k] for c in codes for k in range(len(c) + 1)}
    # Every valid prefix is reachable; every other sequence up to n_levels is not.
    for length in range(n_levels + 1):
        for seq in np.ndindex(*([size] * length)):
            assert trie.is_prefix(seq) == (tuple(seq) in prefixes)
            assert (trie.item_at(seq) >= 0) == (tuple(seq) in set(codes))
    for prefix in prefixes:
        expected = sorted({c[len(prefix)] for c in codes if len(c) > len(prefix) and c[: len(prefix)] == prefix})
        assert trie.allowed(prefix).tolist() == expected
    # The dense layout agrees with the CSR one.
    indices, nodes = trie.padded_children()
    for node in range(trie.n_nodes):
        idx, kids = trie.children(node)
        assert indices[node, : idx.size].tolist() == idx.tolist()
        assert nodes[node, : kids.size].tolist() == kids.tolist()
        assert (indices[node, idx.size :] == -1).all()
    prefix_free = not any(a != b and b[: len(a)] == a for a in codes for b in codes)
    assert trie.is_prefix_free == prefix_free


def test_trie_rejects_duplicates_and_inner_padding():
    with pytest.raises(ParameterError, match="not unique"):
        CodeTrie(np.array([[1, 2], [1, 2]]))
    with pytest.raises(ParameterError, match="padding"):
        CodeTrie(np.array([[1, -1, 2]]))
    with pytest.raises(ParameterError, match="empty"):
        CodeTrie(np.array([[-1, -1]]))
