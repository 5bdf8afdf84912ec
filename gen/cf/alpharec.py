"""AlphaRec (Sheng et al., ICLR 2025): frozen text embeddings of titles -> MLP -> LightGCN -> InfoNCE.

As in LehengTHU/AlphaRec: the item input is the language-model embedding of the
item **title only** (here from ``semid embed --fields title``, MiniLM by default;
the paper uses text-embedding-3-large); a user's input is the **mean of the
embeddings of its training items**; ``MLP = Linear(d, m*d) -> LeakyReLU ->
Linear(m*d, out)`` (``linear=True``: one bias-free linear map, the paper's
"homomorphism" ablation); then LightGCN propagation (``n_layers``, mean over
layers 0..L) on the training graph, recomputed at every batch; the loss is a
sampled-softmax InfoNCE over cosine similarities with ``negatives`` uniform
negatives and temperature ``tau``; scoring is cosine too.

Because nothing but the MLP is learned, a trained model recommends on a dataset
it never saw: :func:`zero_shot_recommender` maps that dataset's title embeddings
through the MLP and represents each user by the mean of its history (no graph).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from semid.errors import ParameterError
from semid.params import above, at_least
from semid.settings import Settings, setting

from .data import CFData
from .lightgcn import mean_propagation, normalized_adjacency

__all__ = ["AlphaRec", "AlphaRecConfig", "zero_shot_recommender"]


@dataclass
class AlphaRecConfig(Settings):
    """Hyper-parameters of :class:`AlphaRec` (defaults: the paper's, hidden width scaled to the encoder)."""

    owner = "alpharec"

    embeddings: str | None = setting(None, "title embeddings (.npz from `semid embed --fields title`)", kind=str)
    hidden_ratio: float = setting(0.5, "MLP hidden width / input width (the paper: 1/2 for 3072-d)", check=above(0.0))
    out_dim: int = setting(64, "behaviour-space width", check=at_least(1))
    linear: bool = setting(False, "one bias-free linear map instead of the MLP (the paper's ablation)")
    n_layers: int = setting(2, "LightGCN layers", check=at_least(0))
    tau: float = setting(0.15, "InfoNCE temperature", check=above(0.0))
    negatives: int = setting(256, "uniform negatives per positive", check=at_least(1))
    lr: float = setting(5e-4, "Adam learning rate", check=above(0.0))
    batch_size: int = setting(4096, "(user, item) pairs per step", check=at_least(1))


def _read_text(path: str | None) -> tuple[list[str], np.ndarray]:
    from semid.embeddings import read_embeddings

    if not path:
        raise ParameterError("alpharec needs title embeddings: --set embeddings=PATH (semid embed --fields title)")
    ids, matrix, _ = read_embeddings(path)
    return ids, matrix


#: Score negatives through a full (B, n_items) matmul while the catalogue has at most this many
#: items per sampled negative (ML-100K: 1,682 items for 256 negatives); gather them above it.
_MATMUL_ITEMS_PER_NEGATIVE = 16


class AlphaRec(nn.Module):
    """AlphaRec over ``n_users`` users and ``n_items`` items (item index 1-based at the API)."""

    name = "alpharec"
    config_class = AlphaRecConfig

    def __init__(self, n_items: int, n_users: int, config: AlphaRecConfig):
        super().__init__()
        self.config, self.n_items, self.n_users = config, n_items, n_users
        ids, matrix = _read_text(config.embeddings)
        if len(ids) != n_items:
            raise ParameterError(f"alpharec: {config.embeddings} holds {len(ids)} items, the dataset {n_items}")
        self.register_buffer("item_text", torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32)))
        self.register_buffer("user_text", torch.zeros(n_users, matrix.shape[1]))
        d = matrix.shape[1]
        if config.linear:
            self.mlp = nn.Linear(d, config.out_dim, bias=False)
        else:
            hidden = max(1, int(round(config.hidden_ratio * d)))
            self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.LeakyReLU(), nn.Linear(hidden, config.out_dim))
        self.adjacency: torch.Tensor | None = None
        self._pairs: tuple[np.ndarray, np.ndarray] | None = None
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self._embedding_ids = ids

    def attach_graph(self, data: CFData) -> None:
        """The training graph, title rows in dataset item order, and users as the mean of their items."""
        if self._embedding_ids != list(data.item_ids):
            from semid.embeddings import load_embeddings

            self.item_text.copy_(torch.from_numpy(load_embeddings(self.config.embeddings, data.item_ids)))
        users, items = data.interactions()
        self.attach_pairs(users, items - 1)
        with torch.no_grad():
            sums = torch.zeros_like(self.user_text).index_add_(0, torch.from_numpy(users),
                                                               self.item_text[torch.from_numpy(items - 1)])
            counts = torch.bincount(torch.from_numpy(users), minlength=self.n_users).clamp(min=1)[:, None]
            self.user_text.copy_(sums / counts)

    def attach_pairs(self, users: np.ndarray, items: np.ndarray) -> None:
        self._pairs = (users, items)
        self.adjacency = normalized_adjacency(users, items, self.n_users, self.n_items)
        self._cache = None

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final ``(users, items)`` behaviour embeddings: MLP outputs propagated, mean over layers."""
        if self.adjacency is None:
            raise RuntimeError("AlphaRec.attach_graph() must be called before propagation")
        final = mean_propagation(self.adjacency, self.mlp(torch.cat([self.user_text, self.item_text])),
                                 self.config.n_layers)
        return final[: self.n_users], final[self.n_users:]

    def train(self, mode: bool = True) -> AlphaRec:
        if mode:
            self._cache = None
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._cache = None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def item_vectors(self) -> torch.Tensor:
        return self.propagate()[1]

    def training_batches(self, data: CFData, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """``int64 (B, 2)`` shuffled (user, positive item) pairs, 0-based; negatives are drawn in :meth:`loss`."""
        if self._pairs is None:
            self.attach_graph(data)
        users, items = (torch.from_numpy(a) for a in self._pairs)
        order = torch.randperm(len(users), generator=generator)
        for start in range(0, len(users), self.config.batch_size):
            take = order[start:start + self.config.batch_size]
            yield torch.stack([users[take], items[take]], dim=1)

    def loss(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Sampled-softmax InfoNCE over cosine similarities, ``negatives`` uniform negatives per pair."""
        user_final, item_final = self.propagate()
        items = F.normalize(item_final, dim=-1)
        u = F.normalize(user_final[batch[:, 0]], dim=-1)  # (B, d)
        negative_ids = torch.randint(0, self.n_items, (len(batch), self.config.negatives), generator=generator)
        pos = (u * items[batch[:, 1]]).sum(-1, keepdim=True) / self.config.tau  # (B, 1)
        if self.n_items <= _MATMUL_ITEMS_PER_NEGATIVE * self.config.negatives:
            # The same dot products, read from one (B, n_items) matmul: gathering a (B, N, d) tensor
            # and scattering its gradient back cost 20x more on a small catalogue.
            neg = (u @ items.T).gather(1, negative_ids) / self.config.tau  # (B, N)
        else:
            neg = torch.einsum("bd,bnd->bn", u, items[negative_ids]) / self.config.tau  # (B, N)
        logits = torch.cat([pos, neg], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))

    @torch.no_grad()
    def score(self, histories: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        """Cosine scores ``float32 (B, n_items)``; unknown users are the mean of their history's embeddings."""
        if self._cache is None or self.training:
            self._cache = self.propagate()
        user_final, item_final = self._cache
        padded = torch.cat([torch.zeros(1, item_final.shape[1]), item_final])
        counts = (histories > 0).sum(1, keepdim=True).clamp(min=1)
        query = padded[histories].sum(1) / counts
        if users is not None:
            known = users >= 0
            query[known] = user_final[users[known]]
        return F.normalize(query, dim=-1) @ F.normalize(item_final, dim=-1).T


class _ZeroShot:
    """Recommender on a dataset AlphaRec was not trained on (see :func:`zero_shot_recommender`)."""

    def __init__(self, model: AlphaRec, item_ids: Sequence[str], text: np.ndarray):
        with torch.no_grad():
            self.text = torch.from_numpy(np.ascontiguousarray(text, dtype=np.float32))
            self.items = F.normalize(model.mlp(self.text), dim=-1)
        self.model, self.item_ids = model, list(item_ids)
        self.row = {item: i for i, item in enumerate(self.item_ids)}

    def evaluation_settings(self) -> dict:
        return {"ranking": "cosine to MLP(title embeddings), zero-shot (no graph)"}

    def recommend(self, histories, k, *, exclude=None, users=None):
        """Top ``k`` per history: cosine of ``MLP(mean title embedding of the history)`` to every item."""
        del users  # the graph's users are not this dataset's
        counts = torch.zeros(len(histories), len(self.item_ids))
        for b, history in enumerate(histories):
            for item in history:
                if item in self.row:
                    counts[b, self.row[item]] += 1.0
        with torch.no_grad():
            known = counts.sum(1, keepdim=True)
            mean_text = counts @ self.text / known.clamp(min=1.0)  # (B, d) mean of the history's titles
            queries = F.normalize(self.model.mlp(mean_text), dim=-1)
            scores = queries @ self.items.T  # (B, n_items)
            scores[known[:, 0] == 0] = 0.0  # no known history item: every item ties
            if exclude is not None:
                for b, items in enumerate(exclude):
                    rows = [self.row[i] for i in items if i in self.row]
                    if rows:
                        scores[b, rows] = float("-inf")
            values, top = torch.topk(scores, min(k, len(self.item_ids)), dim=1)
        return [[self.item_ids[j] for j, v in zip(row, vals) if v != float("-inf")]
                for row, vals in zip(top.tolist(), values.tolist())]


def zero_shot_recommender(run, dataset, embeddings: str):
    """A trained AlphaRec run as a recommender on ``dataset`` (title ``embeddings`` of its items), no training.

    A user is the MLP of the mean title embedding of its history (the paper's zero-shot setting).
    """
    from semid.embeddings import load_embeddings

    from .run import load_run

    model, config, _, _ = load_run(run)
    if config["model"] != "alpharec":
        raise ParameterError(f"{run} is a {config['model']!r} run; zero-shot transfer needs an alpharec run")
    text = load_embeddings(embeddings, dataset.items.item_ids)
    if text.shape[1] != model.item_text.shape[1]:
        raise ParameterError(f"{embeddings}: {text.shape[1]}-d embeddings; the run was trained on "
                             f"{model.item_text.shape[1]}-d ones (use the same text encoder)")
    return _ZeroShot(model, dataset.items.item_ids, text)
