"""RLMRec (Ren et al., WWW 2024): LightGCN aligned with language profiles of users and items.

Profiles are text about what a user or an item is like, embedded with a text
encoder (:func:`write_profiles`; the paper writes them with gpt-3.5 and embeds
with ada-002, semid templates them from the training data and item text and
embeds with MiniLM, as the CPU-scale version in the research notes suggests).
On top of LightGCN's BPR loss:

- ``mode="con"`` (RLMRec-Con): ``MLP_s`` maps profile embeddings into CF space
  and an InfoNCE with cosine similarity at ``kd_temperature`` pulls each user's
  and each item's CF embedding to its own projected profile, weighted by ``kd_weight``;
- ``mode="gen"`` (RLMRec-Gen): ``mask_ratio`` of the nodes start propagation from
  a learned mask token, ``MLP_g`` maps their propagated CF embeddings back to the
  profile space, and an InfoNCE among the masked nodes at ``re_temperature``
  rewards reconstructing their own profile, weighted by ``recon_weight``.

Deviations, documented: the contrastive negatives are the batch's *distinct*
users (items), each node counted once (the reference uses every user for the
user term, a ``B x n_users`` matrix that does not fit a CPU batch of 4096 on
Beauty, and in-batch rows for items, where a repeated item is its own
negative); the backbone is semid's LightGCN with the reference's sum over
layers (``layer_sum``; it sets the balance between BPR and the scale-free
alignment) and no edge dropout (the reference drops 20% of edges).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from semid.errors import ParameterError
from semid.params import above, at_least, in_half_open
from semid.settings import Settings, setting

from .data import CFData
from .lightgcn import LightGCN, mean_propagation

__all__ = ["RLMRec", "RLMRecConfig", "llm_profile_texts", "profile_texts", "write_profiles"]


@dataclass
class RLMRecConfig(Settings):
    """LightGCN's settings plus RLMRec's (defaults: the reference's Amazon settings)."""

    owner = "rlmrec"

    profiles: str | None = setting(None, "directory with items.npz and users.npz (semid cf profiles)", kind=str)
    mode: str = setting("con", "contrastive (con) or generative (gen) alignment", choices=("con", "gen"))
    hidden: int = setting(32, "embedding width", check=at_least(1))
    n_layers: int = setting(3, "propagation layers", check=at_least(0))
    lr: float = setting(1e-3, "Adam learning rate", check=above(0.0))
    l2: float = setting(1e-7, "L2 weight on the batch's layer-0 embeddings", check=at_least(0.0))
    batch_size: int = setting(4096, "(user, positive, negative) triples per step", check=at_least(1))
    kd_weight: float = setting(1e-2, "weight of the contrastive alignment", check=at_least(0.0))
    kd_temperature: float = setting(0.2, "its temperature", check=above(0.0))
    mask_ratio: float = setting(0.15, "share of nodes masked (gen)", check=in_half_open(0.0, 1.0))
    recon_weight: float = setting(0.1, "weight of the reconstruction (gen)", check=at_least(0.0))
    re_temperature: float = setting(0.5, "its temperature", check=above(0.0))
    layer_sum: bool = setting(True, "sum layers 0..K as the reference does (False: LightGCN's mean)")


def _info_nce(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE with cosine similarity: row i of ``a`` against every row of ``b``, positive ``b[i]``."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / tau
    return F.cross_entropy(logits, torch.arange(len(a)))


class RLMRec(LightGCN):
    """LightGCN with RLMRec's alignment to profile embeddings (see the module docstring)."""

    name = "rlmrec"
    config_class = RLMRecConfig

    def __init__(self, n_items: int, n_users: int, config: RLMRecConfig):
        super().__init__(n_items, n_users, config)
        if not config.profiles:
            raise ParameterError("rlmrec needs profile embeddings: --set profiles=DIR (semid cf profiles)")
        from semid.embeddings import read_embeddings

        _, users, _ = read_embeddings(f"{config.profiles}/users.npz")
        _, items, _ = read_embeddings(f"{config.profiles}/items.npz")
        if len(users) != n_users or len(items) != n_items:
            raise ParameterError(f"rlmrec: {config.profiles} holds {len(users)} users / {len(items)} items, "
                                 f"the dataset {n_users} / {n_items}; write them for this dataset")
        self.register_buffer("profile", torch.from_numpy(np.concatenate([users, items]).astype(np.float32)))
        d = self.profile.shape[1]
        mid = (d + config.hidden) // 2
        if config.mode == "con":
            self.to_cf = nn.Sequential(nn.Linear(d, mid), nn.LeakyReLU(), nn.Linear(mid, config.hidden))
        else:
            self.mask_token = nn.Parameter(torch.zeros(1, config.hidden))
            self.to_profile = nn.Sequential(nn.Linear(config.hidden, mid), nn.LeakyReLU(), nn.Linear(mid, d))
        self._profile_ids: tuple[list[str], list[str]] | None = None

    def attach_graph(self, data: CFData) -> None:
        from semid.embeddings import load_embeddings

        users = load_embeddings(f"{self.config.profiles}/users.npz", data.user_ids)
        items = load_embeddings(f"{self.config.profiles}/items.npz", data.item_ids)
        self.profile.copy_(torch.from_numpy(np.concatenate([users, items])))
        super().attach_graph(data)

    def _layer_scale(self) -> float:
        # The sum of layers is (K + 1) times their mean: the same ranking, but BPR's scores grow
        # (K + 1)^2-fold against the scale-free cosine of the alignment, which sets their balance.
        return float(self.config.n_layers + 1) if self.config.layer_sum else 1.0

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = super().propagate()
        scale = self._layer_scale()
        return users * scale, items * scale

    def loss(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        config = self.config
        base = torch.cat([self.user_emb.weight, self.item_emb.weight])
        u, p, n = batch[:, 0], batch[:, 1] + self.n_users, batch[:, 2] + self.n_users
        extra = torch.zeros(())
        if config.mode == "gen":
            masked = torch.rand(len(base), generator=generator) < config.mask_ratio
            base = torch.where(masked[:, None], self.mask_token.expand_as(base), base)
        final = mean_propagation(self.adjacency, base, config.n_layers) * self._layer_scale()
        if config.mode == "con":
            for nodes in (u, p, n):
                # Each distinct node once: a user (or item) repeated in the batch would otherwise be a
                # negative of itself, and the (B, B) logits shrink to (distinct, distinct).
                nodes = torch.unique(nodes)
                extra = extra + _info_nce(final[nodes], self.to_cf(self.profile[nodes]), config.kd_temperature)
            extra = config.kd_weight * extra
        else:
            nodes = torch.unique(torch.cat([u, p, n]))
            nodes = nodes[masked[nodes]]
            if len(nodes) > 1:
                extra = config.recon_weight * _info_nce(self.to_profile(final[nodes]), self.profile[nodes],
                                                        config.re_temperature)
        pos = (final[u] * final[p]).sum(-1)
        neg = (final[u] * final[n]).sum(-1)
        bpr = F.softplus(neg - pos).mean()
        reg = (self.user_emb.weight[u].pow(2).sum() + self.item_emb.weight[p - self.n_users].pow(2).sum()
               + self.item_emb.weight[n - self.n_users].pow(2).sum()) / (2 * len(batch))
        return bpr + config.l2 * reg + extra


def profile_texts(dataset, train_sequences=None) -> tuple[list[str], list[str]]:
    """Template profiles from the *training* split only: ``(user texts, item texts)`` in dataset order.

    ``train_sequences`` (aligned with the dataset's users) replaces the
    leave-one-out training part, e.g. a random hold-out's ``train``.
    """
    from collections import Counter

    from semid.evaluation.split import leave_one_out

    records = {r["item_id"]: r for r in dataset.items.records}

    def cats(item):
        value = records[item].get("categories") or []
        if isinstance(value, str):
            return [value]
        return [str(c) for c in value][-1:]

    items = []
    for item in dataset.items.item_ids:
        r = records[item]
        parts = [str(r.get("title") or item)]
        if cats(item):
            parts.append("Category: " + ", ".join(cats(item)))
        if r.get("brand"):
            parts.append(f"Brand: {r['brand']}")
        items.append(". ".join(parts) + ".")
    if train_sequences is None:
        train_sequences = leave_one_out(dataset).train_sequences
    users = []
    for seq in train_sequences:
        recent = [str(records[i].get("title") or i) for i in seq[-10:]]
        liked = [c for c, _ in Counter(c for i in seq for c in cats(i)).most_common(3)]
        text = ("This user bought: " + "; ".join(recent) + "." if recent else "This user has no history yet.")
        if liked:
            text += " They like " + ", ".join(liked) + "."
        users.append(text)
    return users, items


ITEM_PROFILE_PROMPT = (
    "Act as an assistant who summarizes which kinds of users would enjoy a {noun}. The {noun} is described by "
    "this JSON: {facts}\nAnswer with JSON only, of the form {{\"summarization\": \"the kinds of users who would "
    "enjoy this {noun}, at most 200 words\", \"reasoning\": \"why, briefly\"}}."
)
USER_PROFILE_PROMPT = (
    "Act as an assistant who works out which kinds of {noun}s a user is likely to enjoy. The user bought or "
    "rated these {noun}s (JSON, one per line, with who would enjoy each and the user's rating where there "
    "is one):\n{facts}\nAnswer with JSON only, of the form {{\"summarization\": \"the kinds of {noun}s this user is "
    "likely to enjoy, at most 100 words\", \"reasoning\": \"why\"}}."
)


def _summarization(answer: str) -> tuple[str, bool]:
    """The ``summarization`` of a JSON answer, or the raw answer when it is not that JSON (``ok=False``)."""
    start, end = answer.find("{"), answer.rfind("}")
    if 0 <= start < end:
        try:
            value = json.loads(answer[start : end + 1]).get("summarization")
            if isinstance(value, str) and value.strip() and value.strip() != "None":
                return value.strip(), True
        except (ValueError, AttributeError):
            pass
    return answer.strip(), False


def llm_profile_texts(dataset, backend, *, train_sequences=None, noun: str = "item", history: int = 10,
                      max_new_tokens: int = 160, progress: bool = True) -> tuple[list[str], list[str], dict]:
    """RLMRec's LLM-written profiles: ``(user texts, item texts, stats)`` in dataset order.

    As the reference: an item profile says which users would enjoy the item, from its title and
    description; a user profile says which items the user would enjoy, from the last ``history``
    *training* items (title, the item's profile, and the user's rating where the dataset has one:
    semid datasets carry no review text, which the reference adds).
    Each answer is asked for as ``{"summarization", "reasoning"}`` JSON and the summarization is
    kept; an answer that is not such JSON is kept whole and counted in ``stats``.
    """
    from tqdm.auto import tqdm

    from semid.evaluation.split import leave_one_out

    records = {r["item_id"]: r for r in dataset.items.records}
    if train_sequences is None:
        train_sequences = leave_one_out(dataset).train_sequences
    failed = {"items": 0, "users": 0}

    def ask(prompts: list[str], kind: str) -> list[str]:
        texts = []
        for start in tqdm(range(0, len(prompts), 8), desc=f"{kind} profiles", unit="batch", disable=not progress):
            for answer in backend.generate(prompts[start : start + 8], max_new_tokens=max_new_tokens):
                text, ok = _summarization(answer)
                failed[kind] += not ok
                texts.append(text)
        return texts

    def facts(item: str) -> dict[str, str]:
        r = records[item]
        return {"title": str(r.get("title") or "None"), "description": str(r.get("description") or "None")[:400]}

    items = ask([ITEM_PROFILE_PROMPT.format(noun=noun, facts=json.dumps(facts(i))) for i in dataset.items.item_ids],
                "items")
    item_profile = dict(zip(dataset.items.item_ids, items))
    ratings = {}
    for user, seq, rated in zip(dataset.sequences.user_ids, dataset.sequences.items, dataset.sequences.ratings):
        if rated is not None:
            ratings[user] = dict(zip(seq, rated))
    prompts = []
    for user, seq in zip(dataset.sequences.user_ids, train_sequences):
        lines = []
        for item in seq[-history:]:
            entry = {"title": facts(item)["title"], "description": item_profile[item][:300]}
            if item in ratings.get(user, {}):
                entry["rating"] = f"{ratings[user][item]:g}"
            lines.append(json.dumps(entry))
        prompts.append(USER_PROFILE_PROMPT.format(noun=noun, facts="\n".join(lines) or "(none yet)"))
    users = ask(prompts, "users")
    return users, items, {"unparsed_items": failed["items"], "unparsed_users": failed["users"],
                          "backend": getattr(backend, "name", type(backend).__name__)}


def write_profiles(dataset, out, *, model: str | None = None, progress: bool = True,
                   train_sequences=None, backend=None, noun: str = "item") -> dict:
    """Embed profiles into ``out/users.npz`` and ``out/items.npz`` (MiniLM by default); returns facts.

    Profiles are :func:`profile_texts` (templated), or with ``backend`` (any
    :class:`semid.gen.llm.backend.LLMBackend`) :func:`llm_profile_texts`, written by the LLM;
    the texts are also saved as ``out/profiles.json``.
    """
    from pathlib import Path

    from semid.embed import embed_texts
    from semid.embeddings import save_embeddings

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if backend is None:
        users, items = profile_texts(dataset, train_sequences)
        written = {"profiles": "templated from the training split (semid.gen.cf.rlmrec)"}
    else:
        users, items, stats = llm_profile_texts(dataset, backend, train_sequences=train_sequences, noun=noun,
                                                progress=progress)
        written = {"profiles": "written by an LLM from the training split (semid.gen.cf.rlmrec)", **stats}
    tmp = out / ".profiles.json.tmp"
    tmp.write_text(json.dumps({"users": dict(zip(dataset.sequences.user_ids, users)),
                               "items": dict(zip(dataset.items.item_ids, items)), **written}, indent=1),
                   encoding="utf-8")
    tmp.replace(out / "profiles.json")
    for name, ids, texts in (("items", dataset.items.item_ids, items), ("users", dataset.sequences.user_ids, users)):
        matrix, facts = embed_texts(texts, model=model, progress=progress)
        save_embeddings(out / f"{name}.npz", list(ids), matrix, {**facts, **written})
    return written
