"""InstructRec, re-implemented from the paper (Zhang et al., arXiv 2305.07001; there is no official code).

The paper's instruction format crosses *preference* (none / implicit: the items
of the history / explicit: a sentence about what the user likes), *intention*
(none / vague / specific) and *task form* (pointwise yes/no, pairwise choice,
matching: name the next item, reranking: choose from a candidate list). The
paper writes intentions and explicit preferences with a teacher LLM from
reviews; here they come from item metadata by fixed templates (documented, and
weaker): the explicit preference names the history's most frequent categories
and brands, the vague intention the target's category, the specific one its
category, brand and title words.

A causal LM is LoRA-tuned on the mixture (answer-only loss) on the shared loop;
evaluation is the paper's reranking form over 20 candidates (19 random unseen
+ the target), ranked by the log-likelihood of each candidate title as the
answer, with HR@1/5/10 and NDCG@5/10; validation HR@1 selects the checkpoint.
``rendering=sid`` / ``title+sid`` shows items by a semid index's semantic IDs
(code tokens added to the LLM and trained with the adapter).
"""

from __future__ import annotations

import ast
import logging
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semid.evaluation.candidates import candidate_ndcg, popularity_on_candidates
from semid.evaluation.split import EvalCase, leave_one_out, sample_cases
from semid.params import above, at_least, in_half_open
from semid.settings import Settings, setting

from ..llm.candidates import sample_candidates
from ..llm.rendering import RENDERINGS, add_rendering_tokens, check_rendering, tuned_item_texts
from ..runs import discard_on_failure, open_or_create_run
from ..llm.lora_state import TrainableStateMixin
from ..llm.pairs import encode_pair, pad_pairs
from ..training import Budget, Distributed, LoopSettings, summarize, train_loop

__all__ = ["FORMS", "InstructRecConfig", "build_instruction", "train_instructrec"]

logger = logging.getLogger(__name__)

FORMS = ("pointwise", "pairwise", "matching", "reranking")
PREFERENCES = ("none", "implicit", "explicit")
INTENTIONS = ("none", "vague", "specific")


@dataclass
class InstructRecConfig(Settings):
    """Every InstructRec setting (``semid train instructrec --set key=value``)."""

    owner = "instructrec"

    base_model: str | None = setting(None, "local causal LM folder (None: SmolLM2-135M-Instruct)", kind=str)
    device: str = setting("cpu", "torch device of the model (cpu, cuda, cuda:N, mps)")
    dtype: str = setting("float32", "weights' dtype: float32, or bfloat16 / float16 for 7B-class models on a GPU",
                         choices=("float32", "bfloat16", "float16"))
    forms: tuple = setting(FORMS, "task forms of the training mixture", kind=tuple)
    candidates: int = setting(20, "candidates of the reranking form", check=at_least(2))
    max_history: int = setting(10, "history items in an instruction", check=at_least(1))
    train_users: int = setting(0, "seeded sample of training users (0: all)", check=at_least(0))
    valid_users: int = setting(100, "seeded validation sample", check=at_least(1))
    test_users: int = setting(200, "seeded test sample", check=at_least(1))
    lora_r: int = setting(8, "LoRA rank", check=at_least(1))
    lora_alpha: int = setting(16, "LoRA scale", check=at_least(1))
    lora_dropout: float = setting(0.05, "LoRA dropout", check=in_half_open(0.0, 1.0))
    activation_checkpointing: bool = setting(False, "recompute decoder activations in the backward pass "
                                             "(less memory, about 1.3x the compute: 7B-class models on one GPU)")
    learning_rate: float = setting(3e-4, "AdamW learning rate", check=above(0.0))
    max_epochs: int = setting(2, "epochs over the mixture", check=at_least(1))
    batch_size: int = setting(8, "instructions per step", check=at_least(1))
    patience: int = setting(3, "validations without a better HR@1 before stopping", check=at_least(1))
    checkpoint_minutes: float = setting(10.0, "minutes between checkpoints", check=above(0.0))
    rendering: str = setting("title", "how items appear: title, sid or title+sid (a semid index's code tokens, "
                             "added to the LLM and trained with LoRA)", choices=RENDERINGS)
    index: str | None = setting(None, "semid index folder for the sid renderings", kind=str)
    seed: int = setting(0, "seed of users, formats, candidates and initialisation", check=at_least(0))

    def check_together(self) -> None:
        from semid.errors import ParameterError

        check_rendering("instructrec", self.rendering, self.index)

        unknown = [f for f in self.forms if f not in FORMS]
        if unknown or not self.forms:
            raise ParameterError(f"instructrec: forms must be among {', '.join(FORMS)}, got {list(self.forms)}")


def _categories(record) -> list[str]:
    value = record.get("categories")
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            value = [value]
    return [str(c) for c in (value or []) if str(c).strip()]


class _Facts:
    """Titles, leaf categories and brands of the catalogue, for instruction text."""

    def __init__(self, dataset, texts: dict[str, str] | None = None):
        self.name = {r["item_id"]: str(r.get("title") or r["item_id"]).strip() for r in dataset.items.records}
        # ``title`` is how an item is shown: its title, or its rendering through a semid index;
        # intentions always quote real title words (``name``).
        self.title = texts if texts is not None else self.name
        self.category = {r["item_id"]: (_categories(r) or [""])[-1] for r in dataset.items.records}
        self.brand = {r["item_id"]: str(r.get("brand") or "").strip() for r in dataset.items.records}

    def explicit_preference(self, history) -> str:
        cats = [c for c, _ in Counter(self.category[i] for i in history if self.category[i]).most_common(2)]
        brands = [b for b, _ in Counter(self.brand[i] for i in history if self.brand[i]).most_common(2)]
        parts = []
        if cats:
            parts.append(f"I like {' and '.join(cats)}")
        if brands:
            parts.append(f"I often choose {' and '.join(brands)}")
        return ("; ".join(parts) + ".") if parts else ""

    def intention(self, target, kind: str) -> str:
        category, brand = self.category[target], self.brand[target]
        if kind == "vague":
            return f"I want something in {category}." if category else "I want something new."
        words = " ".join(self.name[target].split()[:4])
        return " ".join(x for x in (f"I am looking for {category or 'an item'}", f"by {brand}" if brand else "",
                                    f"like '{words}'.") if x)


def build_instruction(form: str, facts: _Facts, history, target, others, preference: str, intention: str,
                      rng: random.Random) -> tuple[str, str]:
    """``(instruction, answer)`` of one example of ``form`` (see the module docstring)."""
    parts = []
    if preference == "implicit":
        parts.append("The user bought, in order: " + ", ".join(facts.title[i] for i in history) + ".")
    elif preference == "explicit":
        parts.append("The user says: " + (facts.explicit_preference(history) or "nothing about tastes."))
    if intention != "none":
        parts.append("The user now says: " + facts.intention(target, intention))
    context = " ".join(parts)
    if form == "pointwise":
        item, label = (target, "Yes") if rng.random() < 0.5 else (rng.choice(others), "No")
        return f"{context} Will the user like '{facts.title[item]}'? Answer Yes or No. Answer:", f" {label}"
    if form == "pairwise":
        other = rng.choice(others)
        pair = [target, other] if rng.random() < 0.5 else [other, target]
        return (f"{context} Which one will the user prefer: '{facts.title[pair[0]]}' or '{facts.title[pair[1]]}'? "
                "Answer:", f" {facts.title[target]}")
    if form == "matching":
        return f"{context} Recommend the next item for the user. Answer:", f" {facts.title[target]}"
    shown = [target, *others]
    rng.shuffle(shown)
    return (f"{context} Choose the item the user will buy next from: " + "; ".join(facts.title[i] for i in shown)
            + ". Answer:", f" {facts.title[target]}")


def _rerank_prompt(facts: _Facts, history, candidates) -> str:
    return ("The user bought, in order: " + ", ".join(facts.title[i] for i in history) + ". "
            "Choose the item the user will buy next from: " + "; ".join(facts.title[i] for i in candidates)
            + ". Answer:")


class InstructRecTrainable(TrainableStateMixin):
    """InstructRec's part of the shared loop: the instruction mixture, answer-only loss, reranking validation."""

    name = "instructrec"

    def __init__(self, model, tokenizer, optimizer, examples, valid, facts: _Facts, config: InstructRecConfig):
        self.model, self.tokenizer, self.optimizer = model, tokenizer, optimizer
        self.examples, self.valid, self.facts, self.config = examples, valid, facts, config

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = list(range(len(self.examples)))
        random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
        size = self.config.batch_size
        return [order[i : i + size] for i in range(0, len(order), size)]

    def train_step(self, batch: list[int]) -> tuple[float, int]:
        from ..llm.loss import response_loss

        pairs = [encode_pair(self.tokenizer, *self.examples[i]) for i in batch]
        self.model.train()
        loss = response_loss(self.model, *pad_pairs(pairs, self.tokenizer.pad_token_id))
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach()), len(batch)

    def rerank(self, lists) -> dict[str, float]:
        """HR@1/5/10 and NDCG@5/10 of ranking each candidate list by answer log-likelihood."""
        from ..llm.backend import LocalCausalLM

        backend = LocalCausalLM(self.model, self.tokenizer, chat=False, batch_size=8)
        ranked = []
        self.model.eval()
        for c in lists:
            prompt = _rerank_prompt(self.facts, c.history[-self.config.max_history:], c.candidates)
            scores = backend.score([prompt] * len(c.candidates), [" " + self.facts.title[i] for i in c.candidates])
            ranked.append([c.candidates[j] for j in np.argsort(-np.asarray(scores), kind="stable")])
        m = candidate_ndcg(ranked, [c.candidates for c in lists], [c.target for c in lists], ks=(1, 5, 10))
        return {"hr@1": m["recall@1"], "hr@5": m["recall@5"], "hr@10": m["recall@10"],
                "ndcg@5": m["ndcg@5"], "ndcg@10": m["ndcg@10"]}

    def validate(self) -> dict[str, Any]:
        return {**{k: round(v, 6) for k, v in self.rerank(self.valid).items()}, "users": len(self.valid)}

RESUMABLE = frozenset({"patience", "checkpoint_minutes", "activation_checkpointing"})


def train_instructrec(dataset, out, config: InstructRecConfig, *, budget_minutes: float | None = None,
                      resume: bool = False, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Tune on the instruction mixture in ``out``; reranking metrics of the untuned and the tuned model on test."""
    import torch

    from ..llm.adapters import make_trainable
    from ..llm.base_model import load_causal_lm

    budget = Budget(budget_minutes)
    config.validate()
    texts, index = tuned_item_texts(dataset, config.rendering, config.index)
    facts = _Facts(dataset, texts)
    split = leave_one_out(dataset, max_history=config.max_history)
    train_cases = [EvalCase(u, tuple(s[:-1][-config.max_history:]), s[-1])
                   for u, s in zip(split.train_users, split.train_sequences) if len(s) >= 2]
    train_cases = sample_cases(train_cases, config.train_users, config.seed)
    rng = random.Random(config.seed)
    negatives = sample_candidates(train_cases, dataset.items.item_ids, n=config.candidates, seed=config.seed)
    examples, formats = [], Counter()
    for case, cands in zip(train_cases, negatives):
        form = rng.choice(list(config.forms))
        preference, intention = rng.choice(PREFERENCES), rng.choice(INTENTIONS)
        if preference == "none" and intention == "none":
            preference = "implicit"  # an instruction must carry some signal about the user
        others = [i for i in cands.candidates if i != case.target]
        examples.append(build_instruction(form, facts, case.history, case.target, others, preference, intention, rng))
        formats[f"{form}/{preference}/{intention}"] += 1
    valid = sample_candidates(sample_cases(split.valid, config.valid_users, config.seed), dataset.items.item_ids,
                              n=config.candidates, seed=config.seed + 1)
    test = sample_candidates(sample_cases(split.test, config.test_users, config.seed), dataset.items.item_ids,
                             n=config.candidates, seed=config.seed + 2)
    dist = Distributed()
    run = open_or_create_run(out, dist, model_type="instructrec", config=config.to_dict(), dataset=dataset,
                             index_path=config.index if index is not None else None,
                             fingerprint=index.fingerprint if index is not None else None,
                             resume=resume, overwrite=overwrite,
                             resumable_keys=RESUMABLE)
    with discard_on_failure(run, dist):
        torch.manual_seed(config.seed)
        model, tokenizer = load_causal_lm(config.base_model, dtype=config.dtype, device=config.device)
        code_ids = add_rendering_tokens(model, tokenizer, index)
        fresh = not run.has_checkpoint("last")
        base = InstructRecTrainable(model, tokenizer, None, [], [], facts, config).rerank(test) if fresh else None
        model = make_trainable(model, code_ids, r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout,
                               activation_checkpointing=config.activation_checkpointing)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
        trainable = InstructRecTrainable(model, tokenizer, optimizer, examples, valid, facts, config)
        if fresh:
            run.log("start", examples=len(examples), formats=dict(formats), test_untuned=base)
    settings = LoopSettings(max_epochs=config.max_epochs, patience=config.patience, eval_every=1,
                            checkpoint_minutes=config.checkpoint_minutes, budget_minutes=budget_minutes, metric="hr@1")
    state = train_loop(trainable, run, settings, budget=budget, progress=progress)
    trainable.load_weights(run.checkpoint_path("best"))
    tuned = trainable.rerank(test)
    if base is None:
        base = next((r.get("test_untuned") for r in run.read_log() if r.get("event") == "start"), None)
    run.log("test", **tuned)
    popularity = popularity_on_candidates(split.train_sequences, [c.candidates for c in test], [c.target for c in test],
                                          ks=(1, 5, 10))
    return summarize(run, state, settings, test=tuned, test_untuned=base, formats=dict(formats),
                     popularity_same_candidates=popularity,
                     note="re-implemented from the paper (no official code); instructions from metadata templates")
