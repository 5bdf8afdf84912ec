"""RPG's model (Hou et al., KDD 2025): a small causal transformer that predicts all codes of the next item at once.

An item enters as the mean of its code-token embeddings; a GPT-2 stack reads the
history causally; at every position a head turns the state into one query per
code level, and level ``l``'s distribution over its codes is the cosine between
that query and the level's token embeddings divided by ``temperature``. The loss
is the cross-entropy of every level of the next item, at every position (one
forward pass per user trains all its targets, as SASRec). An item's score is the
mean of its codes' log-probabilities, computed for the whole catalogue at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from semid.errors import ParameterError
from semid.params import above, at_least, in_half_open
from semid.settings import Settings, setting

from ..training.precision import PRECISIONS, autocast

__all__ = ["ParallelConfig", "ParallelModel", "build_code_graph", "cosine_level_logits", "cosine_logits",
           "item_code_tokens"]


def cosine_level_logits(hidden: torch.Tensor, head_weight: torch.Tensor, head_bias: torch.Tensor,
                        code_embeddings: torch.Tensor, padding: torch.Tensor | None,
                        temperature: float) -> torch.Tensor:
    """RPG's head: every level's cosine logits over its codes, ``float (..., L, K_max)``.

    Args:
        hidden: ``float (..., d)`` states.
        head_weight: ``float (L, d, d)``, head_bias ``float (L, d)``: level ``l``'s query is
            ``h + SiLU(W_l h + b_l)``.
        code_embeddings: ``float (L, K_max, d)`` every level's code-token embeddings (unnormalised).
        padding: ``bool (L, K_max)``, True at columns past a level's size (set to -inf), or None.
        temperature: divides the cosines.

    A pure function of tensors, so that ``torch.compile`` can fuse its elementwise steps.
    """
    mixed = torch.einsum("...d,lkd->...lk", hidden, head_weight) + head_bias
    queries = hidden.unsqueeze(-2) + F.silu(mixed)  # (..., L, d)
    return cosine_logits(queries, code_embeddings, padding, temperature)


def cosine_logits(queries: torch.Tensor, code_embeddings: torch.Tensor, padding: torch.Tensor | None,
                  temperature: float) -> torch.Tensor:
    """``float32 (..., L, K_max)``: cosine of each level's query ``(..., L, d)`` with its codes, / temperature."""
    # 1 / temperature is folded into the small (L, K_max, d) table rather than applied to the
    # (..., L, K_max) logits: one pass less over the model's largest tensor, forward and backward.
    # The cosine product always runs in float32, also under bf16 autocast: its outputs are cosines
    # / temperature, up to 1 / 0.03 = 33, where bfloat16's 8-bit mantissa rounds to steps of 0.125-0.25
    # (quantised logits that, measured, halved validation recall after 4 epochs on Beauty).
    with torch.autocast(queries.device.type, enabled=False):
        tables = F.normalize(code_embeddings.float(), dim=-1) / temperature
        logits = torch.einsum("...ld,lkd->...lk", F.normalize(queries.float(), dim=-1), tables)
    return logits if padding is None else logits.masked_fill(padding, float("-inf"))


def _cosine_head_loss(hidden, codes, head_weight, head_bias, code_embeddings, padding, temperature, precision):
    """Mean code cross-entropy of states ``float (N, d)`` against codes ``int64 (N, L)``, products in ``precision``."""
    with autocast(precision, hidden.device):
        logits = cosine_level_logits(hidden, head_weight, head_bias, code_embeddings, padding, temperature)
    return F.cross_entropy(logits.flatten(0, 1), codes.flatten())


_compiled_head_loss = None


def _compiled_cosine_head_loss():
    """``torch.compile`` of :func:`_cosine_head_loss`, built once per process (shapes are dynamic)."""
    global _compiled_head_loss
    if _compiled_head_loss is None:
        _compiled_head_loss = torch.compile(_cosine_head_loss, dynamic=True)
    return _compiled_head_loss


@dataclass
class ParallelConfig(Settings):
    """Every setting of the parallel generator (defaults: RPG's Beauty configuration)."""

    owner = "rpg"

    n_layers: int = setting(2, "transformer layers", check=at_least(1))
    d_model: int = setting(448, "width", check=at_least(8))
    n_heads: int = setting(4, "attention heads", check=at_least(1))
    d_ff: int = setting(1024, "feed-forward width", check=at_least(1))
    dropout: float = setting(0.5, "embedding and attention dropout (RPG, Beauty)", check=in_half_open(0.0, 1.0))
    resid_dropout: float = setting(0.0, "dropout on residual branches (RPG: 0)", check=in_half_open(0.0, 1.0))
    head: str = setting("resblock", "how a state becomes each level's query: resblock (RPG: per level, x + "
                        "SiLU(W x + b) with W = 0 at the start, so every query starts as the state itself) or "
                        "linear (one random projection per level)", choices=("resblock", "linear"))
    max_history: int = setting(50, "most recent history items", check=at_least(1))
    temperature: float = setting(0.03, "temperature of the cosine logits", check=above(0.0))
    pooling: str = setting("sum", "how an item's code embeddings make its input: sum, or mean (a mean of L "
                           "codes is sqrt(L) times smaller than the position embeddings)", choices=("sum", "mean"))
    lr: float = setting(0.01, "AdamW learning rate (RPG, Beauty)", check=above(0.0))
    weight_decay: float = setting(0.0, "AdamW weight decay", check=at_least(0.0))
    warmup_steps: int = setting(10_000, "linear warm-up, then cosine decay", check=at_least(0))
    warmup_epochs: float = setting(0.0, "warm-up length in epochs instead of steps when > 0 (a step count does "
                                   "not carry across dataset sizes: 300 steps are 3.4 Beauty epochs and 75 "
                                   "MovieLens-100K ones)", check=at_least(0.0))
    batch_size: int = setting(256, "users per step", check=at_least(1))
    max_epochs: int = setting(150, "epochs at most", check=at_least(1))
    patience: int = setting(20, "validations without a better NDCG@10", check=at_least(1))
    eval_every: int = setting(1, "epochs between validations", check=at_least(1))
    eval_users: int = setting(2000, "seeded validation sample (0: all)", check=at_least(0))
    checkpoint_minutes: float = setting(10.0, "minutes between checkpoints", check=above(0.0))
    precision: str = setting("fp32", "training precision: fp32, or bf16 (matrix products in bfloat16 under "
                             "autocast; logits, weights, optimizer and scoring in float32; 1.8x faster measured on a "
                             "CPU with AVX512-BF16, slower on CPUs without native bfloat16)", choices=PRECISIONS)
    compile: bool = setting(False, "torch.compile the output head and its loss (fuses its elementwise steps; "
                            "needs a C++ compiler on CPU; the first steps take a few seconds longer)")
    seed: int = setting(0, "seed of initialisation and batch order", check=at_least(0))
    device: str = setting("cpu", "torch device (cpu, cuda, cuda:N, mps); under torchrun / accelerate each "
                          "rank uses its own GPU")

    def check_together(self) -> None:
        if self.d_model % self.n_heads:
            raise ParameterError(f"rpg: d_model {self.d_model} must be divisible by n_heads {self.n_heads}")


def item_code_tokens(index) -> torch.Tensor:
    """``int64 (n_items + 1, L)``: row ``i + 1`` holds the vocab token ids of item ``i``'s code; row 0 is padding.

    Raises:
        ParameterError: the index has codes of different lengths (the parallel generator needs a fixed length).
    """
    codes = torch.as_tensor(index.codes, dtype=torch.long)
    if bool((codes < 0).any()):
        raise ParameterError(
            "the parallel generator needs an index whose codes all have the same length; this one pads "
            "some codes (build it with --set disambiguation=always, or use pq / rqkmeans / rqvae)"
        )
    offsets = torch.as_tensor(index.vocab.level_offsets(), dtype=torch.long)
    tokens = codes + offsets[None, :]
    return torch.cat([torch.zeros(1, tokens.shape[1], dtype=torch.long), tokens])


class ParallelModel(nn.Module):
    """Inputs ``int64 (B, T)`` item rows (1-based, 0 = padding) -> per-level log-probabilities of the next item."""

    def __init__(self, config: ParallelConfig, index):
        super().__init__()
        from transformers import GPT2Config, GPT2Model

        self.config = config
        self.register_buffer("item_tokens", item_code_tokens(index), persistent=False)
        sizes = list(index.vocab.level_sizes)
        self.level_sizes = sizes
        self.register_buffer("level_offsets", torch.as_tensor(index.vocab.level_offsets(), dtype=torch.long),
                             persistent=False)
        # Every level's code tokens as one (L, K_max) table, so all levels' logits come from one
        # batched product instead of L small ones; a shorter level (the disambiguation code) is
        # padded with token 0 and masked to -inf.
        widest = max(sizes)
        columns = torch.arange(widest)
        self.register_buffer("level_tokens", self.level_offsets[:, None] + columns[None, :], persistent=False)
        self.register_buffer("level_padding", columns[None, :] >= torch.as_tensor(sizes)[:, None], persistent=False)
        self.level_tokens.masked_fill_(self.level_padding, 0)
        self._padded = bool(self.level_padding.any())
        self.embedding = nn.Embedding(index.vocab.n_tokens, config.d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)
        gpt = GPT2Config(n_layer=config.n_layers, n_embd=config.d_model, n_head=config.n_heads,
                         n_inner=config.d_ff, n_positions=config.max_history, embd_pdrop=config.dropout,
                         attn_pdrop=config.dropout, resid_pdrop=config.resid_dropout, vocab_size=1,
                         bos_token_id=0, eos_token_id=0)  # no token vocabulary: items enter as embeddings
        self.transformer = GPT2Model(gpt)
        # Items enter as pooled code embeddings (inputs_embeds): GPT-2's own 1-row token table is
        # never used, and a parameter without gradient would stop DistributedDataParallel.
        self.transformer.wte.weight.requires_grad_(False)
        levels, width = len(sizes), config.d_model
        if config.head == "linear":
            self.head = nn.Linear(width, width * levels)
        else:
            # RPG's ResBlock per level: identity at the start (W = 0), so the query of every
            # level begins as the state, which lives in the space of the code embeddings.
            self.head_weight = nn.Parameter(torch.zeros(levels, width, width))
            bound = 1.0 / width**0.5
            self.head_bias = nn.Parameter(torch.empty(levels, width).uniform_(-bound, bound))

    def item_embeddings(self, rows: torch.Tensor) -> torch.Tensor:
        """Sum (or mean, ``pooling``) of the code-token embeddings of items ``rows`` (any shape): ``float (..., d)``.

        Each distinct item is pooled once (a batch of left-padded windows is mostly padding and
        repeats, and pooling dozens of codes per position is the model's costliest step).
        """
        unique, inverse = torch.unique(rows, return_inverse=True)
        codes = self.embedding(self.item_tokens[unique])
        pooled = codes.sum(-2) if self.config.pooling == "sum" else codes.mean(-2)
        return pooled[inverse]

    #: Rows per transformer call: a batch is sorted by history length and run in chunks of this many
    #: rows, each trimmed to its own longest history. Beauty's histories are mostly 3-10 items in
    #: 50-item windows, so one call over the whole batch would spend most of its time on padding.
    chunk_rows = 32

    def _hidden(self, items: torch.Tensor) -> torch.Tensor:
        """States ``float (B, T, d)`` of every position (0 at padding); rows are run in length-sorted chunks."""
        if len(items) <= self.chunk_rows:
            return self._hidden_trimmed(items)
        order = torch.argsort((items > 0).sum(1), descending=True, stable=True)
        states = torch.cat([self._hidden_trimmed(items[rows]) for rows in order.split(self.chunk_rows)])
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=order.device)
        return states[inverse]

    def _hidden_trimmed(self, items: torch.Tensor) -> torch.Tensor:
        """States ``float (B, T, d)``; columns that are padding in every row are skipped (their states are 0).

        Windows are left padded, so the skipped columns come first; positions keep their place in
        the full window (explicit ``position_ids``), so trimming never changes a result.
        """
        real = (items > 0).any(0)
        first = int(real.nonzero()[0]) if bool(real.any()) else items.shape[1] - 1
        kept = items[:, first:]
        positions = torch.arange(first, items.shape[1], device=items.device).expand(len(items), -1)
        states = self.transformer(inputs_embeds=self.item_embeddings(kept), attention_mask=(kept > 0).long(),
                                  position_ids=positions).last_hidden_state
        if first == 0:
            return states
        return torch.cat([states.new_zeros(len(items), first, states.shape[-1]), states], dim=1)

    def _level_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``float (..., L, K_max)``: every level's cosine logits over its codes / temperature; padding is -inf."""
        padding = self.level_padding if self._padded else None
        if self.config.head == "resblock":
            return cosine_level_logits(hidden, self.head_weight, self.head_bias,
                                       self.embedding.weight[self.level_tokens], padding, self.config.temperature)
        queries = self.head(hidden).view(*hidden.shape[:-1], len(self.level_sizes), -1)  # (..., L, d)
        return cosine_logits(queries, self.embedding.weight[self.level_tokens], padding, self.config.temperature)

    def _level_logps(self, hidden: torch.Tensor) -> list[torch.Tensor]:
        """Per level, ``float (..., K_l)`` log-probabilities from states ``float (..., d)``."""
        logps = torch.log_softmax(self._level_logits(hidden), dim=-1)
        return [logps[..., level, :size] for level, size in enumerate(self.level_sizes)]

    def forward(self, items: torch.Tensor) -> list[torch.Tensor]:
        """Per level, ``float (B, T, K_l)`` log-probabilities of the next item's code at every position."""
        return self._level_logps(self._hidden(items))

    def loss(self, items: torch.Tensor) -> torch.Tensor:
        """Mean over real positions and code levels of the next item's code cross-entropy.

        The head runs only at positions with a real input and a real target (windows are mostly
        padding for short histories, and the per-level logits are most of the cost). Under
        ``precision="bf16"`` the transformer and the head multiply in bfloat16; ``compile`` runs
        the head and its loss through ``torch.compile``.
        """
        inputs, targets = items[:, :-1], items[:, 1:]
        valid = (inputs > 0) & (targets > 0)
        precision = self.config.precision
        with autocast(precision, items.device):
            hidden = self._hidden(inputs)[valid].float()  # (N, d)
        codes = self.item_tokens[targets[valid]] - self.level_offsets  # (N, L)
        # Every level has the same N targets, so the mean over (N, L) is the mean of the levels' means.
        if self.config.head == "resblock":
            head_loss = _compiled_cosine_head_loss() if self.config.compile else _cosine_head_loss
            return head_loss(hidden, codes, self.head_weight, self.head_bias, self.embedding.weight[self.level_tokens],
                             self.level_padding if self._padded else None, self.config.temperature, precision)
        with autocast(precision, items.device):
            logits = self._level_logits(hidden)  # (N, L, K_max), float32
        return F.cross_entropy(logits.flatten(0, 1), codes.flatten())

    @torch.no_grad()
    def last_logps(self, items: torch.Tensor) -> list[torch.Tensor]:
        """Per level, ``float (B, K_l)`` log-probabilities of the next item's code after each history."""
        return self._level_logps(self._hidden(items)[:, -1])

    @torch.no_grad()
    def score_items(self, logps: list[torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
        """``float (B, M)`` scores of items ``rows`` (``int64 (B, M)``, 0-based) from :meth:`last_logps`."""
        codes = self.item_tokens[rows + 1] - self.level_offsets  # (B, M, L)
        total = torch.zeros(rows.shape, dtype=logps[0].dtype, device=logps[0].device)
        for level, logp in enumerate(logps):
            total += logp.gather(1, codes[..., level])
        return total / len(logps)

    @torch.no_grad()
    def score_all(self, items: torch.Tensor) -> torch.Tensor:
        """Exact full ranking: ``float (B, n_items)`` mean log-probability of every item's codes after the history."""
        logps = self.last_logps(items)  # (B, K_l) at the last position
        codes = self.item_tokens[1:] - self.level_offsets  # (N, L)
        scores = torch.zeros(items.shape[0], codes.shape[0], device=codes.device)
        for level, logp in enumerate(logps):
            scores += logp[:, codes[:, level]]
        return scores / len(logps)


def build_code_graph(codes, edges: int = 200):
    """``int64 (n_items, edges)``: each item's neighbours, the items sharing the most codes with it (RPG's graph).

    Ties break by item order; an item is never its own neighbour. ``codes``: ``int (n_items, L)``.
    """
    import numpy as np
    import scipy.sparse as sp

    codes = np.asarray(codes)
    n, levels = codes.shape
    offsets = np.concatenate([[0], np.cumsum(codes.max(axis=0) + 1)[:-1]])
    cols = (codes + offsets[None, :]).ravel()
    rows = np.repeat(np.arange(n), levels)
    onehot = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(n, int(cols.max()) + 1))
    shared = (onehot @ onehot.T).tocsr()
    shared.setdiag(0)
    shared.eliminate_zeros()
    edges = min(edges, n - 1)
    out = np.zeros((n, edges), dtype=np.int64)
    for i in range(n):
        start, end = shared.indptr[i], shared.indptr[i + 1]
        neighbours, weights = shared.indices[start:end], shared.data[start:end]
        order = np.lexsort((neighbours, -weights))[:edges]
        chosen = neighbours[order]
        if len(chosen) < edges:  # too few items share a code: fill with the first others, in order
            rest = np.setdiff1d(np.arange(n), np.concatenate([chosen, [i]]), assume_unique=False)[: edges - len(chosen)]
            chosen = np.concatenate([chosen, rest])
        out[i] = chosen
    return out
