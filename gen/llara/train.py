"""LLaRA: titles plus collaborative item embeddings in the prompt, with an easy-to-hard curriculum.

As in ljy0ustc/LLaRA (after its 2024-07 curriculum fix):

- a history item is written ``"{title} [HistoryEmb]"`` and a candidate
  ``"{title} [CansEmb]"``; the input embedding of each placeholder is replaced by
  ``projector(e_item)``, where ``e_item`` is the frozen item embedding of a
  trained SASRec run (``cf_run``) and the projector is ``Linear -> GELU -> Linear``
  into the LLM's hidden size;
- curriculum: at step ``s`` of ``S``, a batch is *hybrid* (placeholders carry the
  projected embeddings, the projector trains) with probability ``s / S``, and
  otherwise *text-only* (``"{title} [PH]"``, projector frozen), easy to hard;
  evaluation always uses the hybrid prompt;
- LoRA r 8 / alpha 32 / dropout 0.1 on every projection, the loss on the answer
  (``title + "\\n"``) only, 20 candidates (19 random unseen + the target), greedy
  decoding, the first line, lower-cased substring matching: valid when exactly
  one candidate title occurs; both HR@1 definitions and the valid ratio.

Changes, documented: candidates are seeded per user (the reference draws them
from the global RNG inside data-loader workers, so its test lists vary between
runs); ``item_source="index"`` is semid's variant, where the placeholder carries
the mean of trainable code-token embeddings of a semid index instead of SASRec's.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semid.errors import ParameterError
from semid.evaluation.candidates import hit_rate_at_1, popularity_on_candidates
from semid.evaluation.split import EvalCase, leave_one_out, sample_cases
from semid.params import above, at_least, in_half_open
from semid.settings import Settings, setting

from ..llm.candidates import sample_candidates
from ..runs import discard_on_failure, open_or_create_run
from ..llm.lora_state import TrainableStateMixin
from ..training import Budget, Distributed, LoopSettings, Schedule, summarize, train_loop

__all__ = ["CANDIDATE", "HISTORY", "TEXT_ONLY", "LLaRAConfig", "train_llara"]

logger = logging.getLogger(__name__)

HISTORY, CANDIDATE, TEXT_ONLY = "[HistoryEmb]", "[CansEmb]", "[PH]"


@dataclass
class LLaRAConfig(Settings):
    """Every LLaRA setting (``semid train llara --set key=value``)."""

    owner = "llara"

    base_model: str | None = setting(None, "local causal LM folder (None: SmolLM2-135M-Instruct)", kind=str)
    device: str = setting("cpu", "torch device of the model (cpu, cuda, cuda:N, mps)")
    dtype: str = setting("float32", "weights' dtype: float32, or bfloat16 / float16 for 7B-class models on a GPU",
                         choices=("float32", "bfloat16", "float16"))
    cf_run: str | None = setting(None, "SASRec run whose item embeddings fill the placeholders", kind=str)
    index: str | None = setting(None, "semid index for item_source=index", kind=str)
    item_source: str = setting("sasrec", "what a placeholder carries", choices=("sasrec", "index"))
    code_dim: int = setting(64, "width of the code-token embeddings (item_source=index)", check=at_least(1))
    domain_item: str = setting("movie", "what the prompt calls an item")
    domain_verb: str = setting("watch", "verb of the prompt (watch, purchase, ...)")
    domain_past: str = setting("watched", "its past tense (watched, purchased, ...)")
    candidates: int = setting(20, "candidates per prompt", check=at_least(2))
    max_history: int = setting(10, "history items in the prompt", check=at_least(1))
    curriculum: bool = setting(True, "hybrid batches with probability step / total steps")
    train_users: int = setting(0, "seeded sample of training users (0: all)", check=at_least(0))
    valid_users: int = setting(100, "seeded validation sample", check=at_least(1))
    test_users: int = setting(200, "seeded test sample", check=at_least(1))
    lora_r: int = setting(8, "LoRA rank", check=at_least(1))
    lora_alpha: int = setting(32, "LoRA scale", check=at_least(1))
    lora_dropout: float = setting(0.1, "LoRA dropout", check=in_half_open(0.0, 1.0))
    activation_checkpointing: bool = setting(False, "recompute decoder activations in the backward pass "
                                             "(less memory, about 1.3x the compute: 7B-class models on one GPU)")
    learning_rate: float = setting(8e-4, "peak learning rate (warm-up from 1%, cosine decay to 1%)", check=above(0.0))
    max_epochs: int = setting(2, "epochs", check=at_least(1))
    batch_size: int = setting(8, "prompts per step", check=at_least(1))
    patience: int = setting(3, "validations without a better HR@1 before stopping", check=at_least(1))
    max_new_tokens: int = setting(64, "answer length at evaluation", check=at_least(1))
    checkpoint_minutes: float = setting(10.0, "minutes between checkpoints", check=above(0.0))
    seed: int = setting(0, "seed of users, candidates, curriculum draws and initialisation", check=at_least(0))

    def require_inputs(self) -> None:
        """The item source must be given before training (a default config names none)."""
        if self.item_source == "sasrec" and not self.cf_run:
            raise ParameterError("llara: item_source 'sasrec' needs cf_run (a `semid cf train sasrec` run)")
        if self.item_source == "index" and not self.index:
            raise ParameterError("llara: item_source 'index' needs index (a semid index directory)")


@dataclass
class _Example:
    history: list[str]
    candidates: list[str]
    target: str


def _prompt(example: _Example, titles, config: LLaRAConfig, hybrid: bool) -> str:
    h, c = (HISTORY, CANDIDATE) if hybrid else (TEXT_ONLY, TEXT_ONLY)
    history = ", ".join(f"{titles[i]} {h}" for i in example.history)
    cands = ", ".join(f"{titles[i]} {c}" for i in example.candidates)
    item, verb = config.domain_item, config.domain_verb
    return (f"This user has {config.domain_past} {history} in the previous. Please predict the next {item} this user will "
            f"{verb}. Choose the answer from the following {len(example.candidates)} {item} titles: {cands}. Answer:")


class _ItemSource:
    """``float (n, d)`` vectors of item ids: frozen SASRec embeddings, or mean code-token embeddings."""

    def __init__(self, config: LLaRAConfig, dataset):
        import torch

        self.kind = config.item_source
        if self.kind == "sasrec":
            from ..cf.run import check_dataset, load_run

            check_dataset(config.cf_run, dataset, training=False)
            model, _, item_ids, _ = load_run(config.cf_run)
            with torch.no_grad():
                self.table = model.item_vectors().detach().float().clone()  # frozen
            self.row = {item: i for i, item in enumerate(item_ids)}
            self.dim = self.table.shape[1]
            self.codes = None
        else:
            import semid

            index = semid.load(config.index)
            self.row = {item: i for i, item in enumerate(index.item_ids)}
            missing = [i for i in dataset.items.item_ids if i not in self.row]
            if missing:
                raise ParameterError(f"llara: the index does not hold {len(missing)} items (e.g. {missing[0]!r})")
            ids = [index.vocab.token_ids([c for c in code if c >= 0]) for code in index.codes.tolist()]
            width = max(len(x) for x in ids)
            self.codes = torch.full((len(ids), width), -1, dtype=torch.long)
            for r, x in enumerate(ids):
                self.codes[r, : len(x)] = torch.tensor(x)
            self.table = torch.nn.Embedding(index.vocab.n_tokens, config.code_dim)
            self.dim = config.code_dim

    def parameters(self):
        return list(self.table.parameters()) if self.codes is not None else []

    def __call__(self, items: list[str]):
        import torch

        rows = torch.tensor([self.row[i] for i in items], dtype=torch.long)
        if self.codes is None:
            return self.table[rows]
        codes = self.codes[rows]
        valid = codes >= 0
        vectors = self.table(codes.clamp(min=0)) * valid[..., None]
        return vectors.sum(1) / valid.sum(1, keepdim=True).clamp(min=1)


class LLaRATrainable(TrainableStateMixin):
    """LLaRA's part of the shared loop: hybrid / text-only batches, answer-only loss, HR@1 validation."""

    name = "llara"

    def __init__(self, model, tokenizer, projector, source: _ItemSource, optimizer, examples, valid, titles,
                 config: LLaRAConfig, total_steps: int):
        self.model, self.tokenizer, self.projector, self.source = model, tokenizer, projector, source
        self.optimizer, self.examples, self.valid, self.titles = optimizer, examples, valid, titles
        self.config, self.total_steps = config, total_steps
        # The reference's schedule: warm-up from 1% of the peak over 5% of the steps, cosine down to 1%.
        self.schedule = Schedule("cosine", total_steps=max(total_steps, 1), warmup_steps=max(1, total_steps // 20),
                                 floor=0.01)
        self.ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (HISTORY, CANDIDATE, TEXT_ONLY)}
        self.step = 0

    def _embed(self, ids, examples: list[_Example], hybrid: bool):
        import torch

        embeds = self.model.get_input_embeddings()(ids)
        if hybrid:
            slots = (ids == self.ids[HISTORY]) | (ids == self.ids[CANDIDATE])
            items = [i for e in examples for i in [*e.history, *e.candidates]]
            # the projector stays float32 (trained in full precision) on the model's device
            vectors = self.projector(self.source(items).to(embeds.device, torch.float32)).to(embeds.dtype)
            if int(slots.sum()) != len(items):
                raise ParameterError("llara: a title contains a placeholder token; rename the item or the token")
            embeds = embeds.clone()
            embeds[slots] = vectors
        return embeds

    def _batch(self, examples: list[_Example], hybrid: bool, with_answer: bool):
        import torch

        pad = self.tokenizer.pad_token_id
        rows = []
        for e in examples:
            head = self.tokenizer(_prompt(e, self.titles, self.config, hybrid))["input_ids"]
            tail = self.tokenizer(" " + self.titles[e.target] + "\n", add_special_tokens=False)["input_ids"] \
                if with_answer else []
            rows.append((head, tail))
        width = max(len(h) + len(t) for h, t in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        for r, (head, tail) in enumerate(rows):
            offset = 0 if with_answer else width - len(head)  # generation: left padding
            ids[r, offset : offset + len(head) + len(tail)] = torch.tensor(head + tail)
            mask[r, offset : offset + len(head) + len(tail)] = 1
            if tail:
                labels[r, len(head) : len(head) + len(tail)] = torch.tensor(tail)
        device = next(self.model.parameters()).device
        return ids.to(device), mask.to(device), labels.to(device)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = list(range(len(self.examples)))
        random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
        size = self.config.batch_size
        return [order[i : i + size] for i in range(0, len(order), size)]

    def _lr(self) -> float:
        return self.config.learning_rate * self.schedule(self.step)

    def train_step(self, batch: list[int]) -> tuple[float, int]:
        from ..llm.loss import response_loss

        examples = [self.examples[i] for i in batch]
        draw = random.Random(self.config.seed * 7_919 + self.step).random()
        hybrid = (not self.config.curriculum) or draw < self.step / max(1, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        self.projector.requires_grad_(hybrid)
        ids, mask, labels = self._batch(examples, hybrid, with_answer=True)
        self.model.train()
        # Only the answer positions go through the 49k-wide output layer (the full logits peaked
        # at 16.9 GiB on SmolLM2 with 8 prompts of ~800 tokens).
        loss = response_loss(self.model, None, mask, labels, inputs_embeds=self._embed(ids, examples, hybrid))
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return float(loss.detach()), len(batch)

    def evaluate(self, examples: list[_Example]) -> dict[str, float]:
        import torch

        self.model.eval()
        first, valid = [], []
        with torch.no_grad():
            for start in range(0, len(examples), 8):
                chunk = examples[start : start + 8]
                ids, mask, _ = self._batch(chunk, hybrid=True, with_answer=False)
                out = self.model.generate(inputs_embeds=self._embed(ids, chunk, True), attention_mask=mask,
                                          max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id)
                for e, row in zip(chunk, out):
                    text = self.tokenizer.decode(row, skip_special_tokens=True).strip().split("\n")[0].lower()
                    found = [i for i in e.candidates if self.titles[i].lower() in text]
                    first.append(found[0] if len(found) == 1 else None)
                    valid.append(len(found) == 1)
        return {k: round(v, 6) for k, v in hit_rate_at_1(first, valid, [e.target for e in examples]).items()}

    def validate(self) -> dict[str, Any]:
        return {**self.evaluate(self.valid), "users": len(self.valid)}

    def trainable_parameters(self) -> dict[str, Any]:
        out = {f"llm.{n}": p for n, p in self.model.named_parameters() if p.requires_grad}
        out.update({f"projector.{n}": p for n, p in self.projector.named_parameters()})
        out.update({f"source.{n}": p for n, p in (self.source.table.named_parameters()
                                                    if self.source.codes is not None else [])})
        return out

def _examples(dataset, cases: list[EvalCase], config: LLaRAConfig, seed: int) -> list[_Example]:
    lists = sample_candidates(cases, dataset.items.item_ids, n=config.candidates, seed=seed)
    return [_Example(list(c.history[-config.max_history:]), list(c.candidates), c.target) for c in lists]


RESUMABLE = frozenset({"patience", "checkpoint_minutes", "activation_checkpointing"})


def train_llara(dataset, out, config: LLaRAConfig, *, budget_minutes: float | None = None, resume: bool = False,
                overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train LLaRA in run directory ``out``; summary with the test HR@1 (both definitions) of the best weights."""
    import torch

    from ..llm.adapters import make_trainable
    from ..llm.base_model import load_causal_lm

    budget = Budget(budget_minutes)
    config.validate()
    config.require_inputs()
    titles = {r["item_id"]: str(r.get("title") or r["item_id"]) for r in dataset.items.records}
    split = leave_one_out(dataset, max_history=config.max_history)
    train_cases = [EvalCase(u, tuple(s[:-1][-config.max_history:]), s[-1])
                   for u, s in zip(split.train_users, split.train_sequences) if len(s) >= 2]
    examples = _examples(dataset, sample_cases(train_cases, config.train_users, config.seed), config, config.seed)
    valid = _examples(dataset, sample_cases(split.valid, config.valid_users, config.seed), config, config.seed + 1)
    test = _examples(dataset, sample_cases(split.test, config.test_users, config.seed), config, config.seed + 2)
    dist = Distributed()
    run = open_or_create_run(out, dist, model_type="llara", config=config.to_dict(), dataset=dataset, resume=resume,
                             overwrite=overwrite, resumable_keys=RESUMABLE)
    with discard_on_failure(run, dist):
        torch.manual_seed(config.seed)
        source = _ItemSource(config, dataset)
        model, tokenizer = load_causal_lm(config.base_model, dtype=config.dtype, device=config.device)
        tokenizer.add_special_tokens({"additional_special_tokens": [HISTORY, CANDIDATE, TEXT_ONLY]})
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        new_ids = tokenizer.convert_tokens_to_ids([HISTORY, CANDIDATE, TEXT_ONLY])
        model = make_trainable(model, new_ids, r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout,
                               activation_checkpointing=config.activation_checkpointing)
        hidden = model.get_input_embeddings().weight.shape[1]
        projector = torch.nn.Sequential(torch.nn.Linear(source.dim, hidden), torch.nn.GELU(),
                                        torch.nn.Linear(hidden, hidden)).to(config.device)
        params = [p for p in model.parameters() if p.requires_grad] + list(projector.parameters()) + source.parameters()
        optimizer = torch.optim.Adam(params, lr=config.learning_rate)
        steps = math.ceil(len(examples) / config.batch_size) * config.max_epochs
        trainable = LLaRATrainable(model, tokenizer, projector, source, optimizer, examples, valid, titles, config,
                                   steps)
    settings = LoopSettings(max_epochs=config.max_epochs, patience=config.patience, eval_every=1,
                            checkpoint_minutes=config.checkpoint_minutes, budget_minutes=budget_minutes,
                            metric="hr@1_all")
    state = train_loop(trainable, run, settings, budget=budget, progress=progress)
    trainable.load_weights(run.checkpoint_path("best"))
    metrics = trainable.evaluate(test)
    run.log("test", **metrics)
    popularity = popularity_on_candidates(split.train_sequences, [e.candidates for e in test], [e.target for e in test])
    return summarize(run, state, settings, test=metrics, item_source=config.item_source,
                     popularity_same_candidates=popularity,
                     prompts={"train": len(examples), "valid": len(valid), "test": len(test)})
