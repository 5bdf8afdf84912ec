"""The trie of an index flattened into torch tables for batched decoding.

Model vocabulary layout (fixed for every semid seq2seq generator, e.g. TIGER)::

    model token 0            pad, also the decoder start token
    model token 1            EOS
    model token 2 + t        code token t = vocab.token_id(level, index)
    after the code tokens    optional user tokens (never allowed in outputs)

:meth:`TrieTables.build` uses that layout by default; LLM generators whose tokenizer
gave the ``<a_12>``-style tokens arbitrary ids pass ``token_ids`` (model id of each
vocab token) and ``eos_token_id`` instead.

End token. When the trie is *prefix-free* (no code is a proper prefix of another,
e.g. fixed-length TIGER codes) a code is complete as soon as its last token is
emitted, so by default no EOS is used: a beam that reaches a leaf is finished and
the model never has to score EOS. When some code is a prefix of another, EOS is
required and is allowed exactly at nodes where a code ends. ``require_eos=True``
forces EOS for every trie (a model trained with EOS after each target must use it,
so that its score includes ``log p(EOS)``). A trained model and its tables must
agree: targets end with EOS exactly when ``tables.uses_eos``.

Per-step cost. The trie's edges are stored in CSR order (``child_ptr``,
``edge_token``, ``edge_child``: a few bytes per edge, no padding in memory).
:meth:`TrieTables.allowed` pads on the fly to the largest branching among the
nodes asked about, so the allowed tokens and children of every beam come from one
gather per step. The work per step is ``rows x that width``: it does not depend on
the number of items, only on the branching, which the level sizes bound.

Static shapes. ``allowed(..., width=tables.level_width(depth))`` pads every node
to the size of its level instead (the vocabulary's codebook size, e.g. 256): the
step's shapes then depend on nothing but the index's vocabulary, never on which
nodes the beams reached, and reading the widest node back from the device is
avoided. That is the mode for accelerators and compiled graphs, and it makes the
constraint's cost per step exactly flat in the number of items; on a CPU the
adaptive width is cheaper (it is never wider).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from semid.errors import ParameterError
from semid.trie import CodeTrie
from semid.vocab import CodeVocab

__all__ = [
    "EOS_TOKEN_ID",
    "FIRST_CODE_TOKEN_ID",
    "PAD_TOKEN_ID",
    "TrieTables",
    "code_token_ids",
]

logger = logging.getLogger(__name__)

#: Model token ids of the fixed seq2seq layout (see the module docstring).
PAD_TOKEN_ID = 0
EOS_TOKEN_ID = 1
FIRST_CODE_TOKEN_ID = 2

# Tables built for a trie are cached per (trie object, options): building them for
# a million-item index takes seconds and every decode call needs them.
_CACHE: "weakref.WeakKeyDictionary[CodeTrie, dict[tuple, TrieTables]]" = weakref.WeakKeyDictionary()


def code_token_ids(vocab: CodeVocab) -> torch.Tensor:
    """Model token id of every vocab token under the fixed layout: ``2 + token_id``.

    Returns ``int64 (vocab.n_tokens,)``.
    """
    return torch.arange(vocab.n_tokens, dtype=torch.long) + FIRST_CODE_TOKEN_ID


@dataclass(frozen=True)
class TrieTables:
    """Allowed continuations of every trie node as torch tensors.

    Nodes are the :class:`CodeTrie` node ids (root ``0``).

    Attributes:
        child_ptr: ``int64 (n_nodes + 1,)``: node ``n``'s edges are
            ``child_ptr[n]:child_ptr[n + 1]``.
        edge_token: ``int64 (n_edges,)`` model token id of each edge.
        edge_child: ``int64 (n_edges,)`` node reached by each edge.
        n_children: ``int64 (n_nodes,)`` number of code-token children per node.
        terminal_item: ``int64 (n_nodes,)`` item position whose code ends at the
            node, ``-1`` when none.
        eos_allowed: ``bool (n_nodes,)`` EOS may follow the node (all False when
            ``uses_eos`` is False).
        item_rank: ``int64 (n_items,)`` position of each item in depth-first
            (lexicographic) code order; the items under any node are a contiguous
            rank range, which makes per-node sums a difference of prefix sums.
        node_lo, node_hi: ``int64 (n_nodes,)`` that rank range ``[lo, hi)``.
        token_to_vocab: ``int64 (max_model_token + 1,)`` vocab token id of each
            model token, ``-1`` for tokens that are not code tokens.
        uses_eos: whether beams finish with an explicit EOS (see module docstring).
        eos_token_id: model id of EOS (used for dead rows even when ``uses_eos``
            is False).
        max_depth: length of the longest code.
        fixed_length: every code has ``max_depth`` tokens.
        level_sizes: tokens of each code level in the vocabulary (the widest any
            node of that depth can branch), ``max_depth`` entries.
    """

    child_ptr: torch.Tensor
    edge_token: torch.Tensor
    edge_child: torch.Tensor
    n_children: torch.Tensor
    terminal_item: torch.Tensor
    eos_allowed: torch.Tensor
    item_rank: torch.Tensor
    node_lo: torch.Tensor
    node_hi: torch.Tensor
    token_to_vocab: torch.Tensor
    uses_eos: bool
    eos_token_id: int
    max_depth: int
    fixed_length: bool
    level_sizes: tuple[int, ...] = ()

    # -- construction ---------------------------------------------------------------
    @classmethod
    def build(
        cls,
        trie: CodeTrie,
        vocab: CodeVocab,
        *,
        token_ids: torch.Tensor | Sequence[int] | None = None,
        eos_token_id: int = EOS_TOKEN_ID,
        require_eos: bool | None = None,
        cache: bool = True,
    ) -> "TrieTables":
        """Tables for ``trie`` (from ``tokenizer.trie``) under ``vocab`` (``tokenizer.vocab``).

        Args:
            token_ids: ``int (vocab.n_tokens,)`` model token id of each vocab token;
                default the fixed layout ``2 + token_id``.
            eos_token_id: model id of the end token (default 1).
            require_eos: True: always end codes with EOS; False: never (the trie must
                be prefix-free); None: only when the trie is not prefix-free.
            cache: reuse tables already built for this trie object and options.

        Raises:
            ParameterError: a mapping of the wrong length, duplicate or negative ids,
                an EOS id that is also a code token, or ``require_eos=False`` on a trie
                where some code is a prefix of another.
        """
        if vocab.n_levels < trie.n_levels:
            raise ParameterError(f"vocab has {vocab.n_levels} levels but the trie has codes of {trie.n_levels} tokens")
        if token_ids is None:
            mapping = code_token_ids(vocab)
        else:
            mapping = torch.as_tensor(token_ids, dtype=torch.long).flatten()
        eos_token_id = int(eos_token_id)
        uses_eos = (not trie.is_prefix_free) if require_eos is None else bool(require_eos)
        key = (uses_eos, eos_token_id, tuple(vocab.level_offsets()), tuple(mapping.tolist()))
        if cache and key in _CACHE.get(trie, {}):
            return _CACHE[trie][key]
        _check_mapping(mapping, vocab, eos_token_id)
        if not uses_eos and not trie.is_prefix_free:
            raise ParameterError(
                "require_eos=False but some code of this index is a prefix of another; "
                "such codes can only be told apart with an end token (use require_eos=None or True)"
            )
        tables = cls._from_arrays(trie, vocab, mapping, eos_token_id, uses_eos)
        logger.info(
            "trie tables: %d items, %d nodes, %d edges, max depth %d, %s",
            tables.n_items, tables.n_nodes, int(tables.edge_token.numel()), tables.max_depth,
            "EOS after each code" if uses_eos else "no EOS (prefix-free codes)",
        )
        if cache:
            _CACHE.setdefault(trie, {})[key] = tables
        return tables

    @classmethod
    def from_tokenizer(cls, tokenizer, **options) -> "TrieTables":
        """:meth:`build` from a fitted :class:`semid.ItemTokenizer` (its trie and vocab)."""
        return cls.build(tokenizer.trie, tokenizer.vocab, **options)

    @classmethod
    def _from_arrays(
        cls, trie: CodeTrie, vocab: CodeVocab, mapping: torch.Tensor, eos_token_id: int, uses_eos: bool
    ) -> "TrieTables":
        depth = trie.node_depth.astype(np.int64)
        if np.any(np.diff(depth) < 0):  # pragma: no cover - CodeTrie guarantees it
            raise ParameterError("trie nodes are not numbered depth by depth")
        max_depth = int(depth.max())
        depth_start = np.searchsorted(depth, np.arange(max_depth + 2)).astype(np.int64)
        n_children = np.diff(trie.child_ptr).astype(np.int64)
        # An edge leaving a node of depth d carries a level-d token.
        edge_depth = np.repeat(depth, n_children)
        offsets = np.asarray(vocab.level_offsets(), dtype=np.int64)
        edge_token = mapping.numpy()[offsets[edge_depth] + trie.child_index.astype(np.int64)]
        item_rank, node_lo, node_hi = _item_ranges(trie, depth_start)
        terminal = torch.from_numpy(trie.terminal_item.astype(np.int64))
        inverse = torch.full((int(mapping.max()) + 1,), -1, dtype=torch.long)
        inverse[mapping] = torch.arange(mapping.numel())
        return cls(
            child_ptr=torch.from_numpy(trie.child_ptr.astype(np.int64)),
            edge_token=torch.from_numpy(edge_token.astype(np.int64)),
            edge_child=torch.from_numpy(trie.child_node.astype(np.int64)),
            n_children=torch.from_numpy(n_children),
            terminal_item=terminal,
            eos_allowed=(terminal >= 0) if uses_eos else torch.zeros_like(terminal, dtype=torch.bool),
            item_rank=torch.from_numpy(item_rank),
            node_lo=torch.from_numpy(node_lo),
            node_hi=torch.from_numpy(node_hi),
            token_to_vocab=inverse,
            uses_eos=uses_eos,
            eos_token_id=eos_token_id,
            max_depth=max_depth,
            fixed_length=bool(trie.fixed_length),
            level_sizes=tuple(int(x) for x in vocab.level_sizes[:max_depth]),
        )

    # -- properties -------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return int(self.item_rank.numel())

    @property
    def n_nodes(self) -> int:
        return int(self.terminal_item.numel())

    @property
    def max_steps(self) -> int:
        """Decoding steps needed for the longest code (its tokens, plus EOS when used)."""
        return self.max_depth + int(self.uses_eos)

    @property
    def min_vocab_size(self) -> int:
        """Smallest model vocabulary that holds every code token and EOS."""
        return max(int(self.token_to_vocab.numel()), self.eos_token_id + 1)

    def level_width(self, depth: int) -> int:
        """Static padding width for nodes of ``depth``: the level's vocabulary size
        (1 past the deepest level, where only EOS can follow)."""
        return self.level_sizes[depth] if depth < len(self.level_sizes) else 1

    @property
    def device(self) -> torch.device:
        return self.terminal_item.device

    def to(self, device: torch.device | str) -> "TrieTables":
        """The tables on ``device``: self when already there, else a copy made once and kept."""
        device = torch.device(device)
        if self.device == device:
            return self
        copies = self.__dict__.setdefault("_copies", {})  # not a field: frozen, not compared
        key = str(device)
        if key not in copies:
            moved = {}
            for f in fields(self):
                value = getattr(self, f.name)
                moved[f.name] = value.to(device) if isinstance(value, torch.Tensor) else value
            copies[key] = TrieTables(**moved)
        return copies[key]

    # -- lookups ----------------------------------------------------------------------
    def allowed(
        self, nodes: torch.Tensor, active: torch.Tensor | None = None, *, width: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Allowed code tokens and children of ``nodes``, padded to their largest branching.

        Args:
            nodes: ``int64 (...)`` node ids.
            active: optional ``bool (...)``; inactive entries get no tokens (and do
                not widen the padding).
            width: pad to exactly this many slots (static shapes, e.g.
                :meth:`level_width`); must be at least the branching of every active
                node, which the level size of their depth guarantees. ``None``: the
                largest child count among active nodes.

        Returns:
            ``(tokens, children)``, each ``int64 (..., width)`` with ``width >= 1``,
            ``-1`` padded.
        """
        counts = self.n_children[nodes]
        if active is not None:
            counts = torch.where(active, counts, torch.zeros_like(counts))
        if width is None:
            width = max(int(counts.max()) if counts.numel() else 0, 1)
        slot = torch.arange(width, device=nodes.device)
        present = slot < counts.unsqueeze(-1)
        edge = torch.where(present, self.child_ptr[nodes].unsqueeze(-1) + slot, torch.zeros_like(slot))
        minus_one = torch.full_like(edge, -1)
        return (
            torch.where(present, self.edge_token[edge], minus_one),
            torch.where(present, self.edge_child[edge], minus_one),
        )

    def item_of_sequences(self, sequences: torch.Tensor) -> torch.Tensor:
        """Item position of each generated token sequence, ``-1`` when it is not a complete code.

        Args:
            sequences: ``int64 (R, T)`` generated model tokens only (no prompt, no
                decoder start token); tokens after the code (EOS, padding) are ignored,
                but with ``uses_eos`` the code must be followed by EOS.

        Returns:
            ``int64 (R,)`` item positions (row order of the tokenizer), or ``-1``.
        """
        nodes, done, valid = self.walk(sequences)
        if self.uses_eos:
            ok = valid & done
        else:
            ok = valid & (self.terminal_item[nodes] >= 0)
        return torch.where(ok, self.terminal_item[nodes], torch.full_like(nodes, -1))

    def walk(self, sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Follow generated tokens down the trie, vectorized over rows.

        Args:
            sequences: ``int64 (R, T)`` generated model tokens.

        Returns:
            ``(nodes, finished, valid)``, each ``(R,)``: the node reached (``0`` for
            invalid rows), whether an EOS closed a complete code, and whether every
            token up to that point followed the trie. A row that is complete without
            EOS (prefix-free tables) stops at its leaf; tokens after a finished code
            are ignored.
        """
        rows, steps = sequences.shape
        nodes = torch.zeros(rows, dtype=torch.long, device=sequences.device)
        valid = torch.ones(rows, dtype=torch.bool, device=sequences.device)
        finished = torch.zeros(rows, dtype=torch.bool, device=sequences.device)
        for t in range(steps):
            active = valid & ~finished
            if not bool(active.any()):
                break
            token = sequences[:, t]
            if self.uses_eos:
                closes = active & (token == self.eos_token_id) & self.eos_allowed[nodes]
                finished = finished | closes
                active = active & ~closes
            elif t >= self.max_depth:
                break
            cand_tok, cand_child = self.allowed(nodes, active)
            match = cand_tok == token[:, None]
            found = match.any(dim=1)
            child = cand_child.gather(1, match.to(torch.long).argmax(dim=1, keepdim=True)).squeeze(1)
            valid = valid & (~active | found)
            nodes = torch.where(active & found, child, nodes)
            if not self.uses_eos:
                # A leaf is a complete code; later tokens (padding) do not belong to it.
                finished = finished | (active & found & (self.n_children[nodes] == 0))
        nodes = torch.where(valid, nodes, torch.zeros_like(nodes))
        return nodes, finished, valid


def _check_mapping(mapping: torch.Tensor, vocab: CodeVocab, eos_token_id: int) -> None:
    if mapping.numel() != vocab.n_tokens:
        raise ParameterError(
            f"token_ids has {mapping.numel()} entries; expected one model token id per vocab token "
            f"({vocab.n_tokens})"
        )
    if mapping.numel() and int(mapping.min()) < 0:
        raise ParameterError(f"token_ids must be non-negative model token ids, got {int(mapping.min())}")
    if eos_token_id < 0:
        raise ParameterError(f"eos_token_id must be a non-negative model token id, got {eos_token_id}")
    if torch.unique(mapping).numel() != mapping.numel():
        raise ParameterError("token_ids maps two vocab tokens to the same model token id")
    if bool((mapping == eos_token_id).any()):
        raise ParameterError(f"eos_token_id {eos_token_id} is also the model id of a code token")


def _item_ranges(trie: CodeTrie, depth_start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth-first item ranks and the rank range ``[lo, hi)`` of the items under every node."""
    n_nodes = trie.n_nodes
    counts = np.diff(trie.child_ptr)
    parent = np.full(n_nodes, -1, dtype=np.int64)
    parent[trie.child_node] = np.repeat(np.arange(n_nodes), counts)
    item_node = trie.item_node
    depth = trie.node_depth.astype(np.int64)
    max_depth = int(depth.max())
    path = np.full((trie.n_items, max_depth), -1, dtype=np.int64)
    current = item_node.copy()
    for d in range(max_depth, 0, -1):
        at_depth = depth[current] == d
        path[at_depth, d - 1] = current[at_depth]
        current = np.where(at_depth, parent[current], current)
    # CodeTrie numbers the nodes of a depth by (parent id, index), so sorting items on
    # the node ids along their paths is the depth-first (lexicographic) code order;
    # -1 (code already ended) sorts first, putting a prefix before its extensions.
    order = np.lexsort(path[:, ::-1].T) if max_depth else np.arange(trie.n_items)
    rank = np.empty(trie.n_items, dtype=np.int64)
    rank[order] = np.arange(trie.n_items)

    lo = np.full(n_nodes, np.iinfo(np.int64).max, dtype=np.int64)
    hi = np.full(n_nodes, -1, dtype=np.int64)
    lo[item_node] = rank
    hi[item_node] = rank + 1
    for d in range(max_depth, 0, -1):
        nodes = np.arange(depth_start[d], depth_start[d + 1])
        np.minimum.at(lo, parent[nodes], lo[nodes])
        np.maximum.at(hi, parent[nodes], hi[nodes])
    return rank, lo, hi
