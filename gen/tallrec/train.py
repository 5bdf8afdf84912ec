"""TALLRec rec-tuning on the shared loop: LoRA on a causal LM, early stopping on validation AUC.

Faithful to SAI990323/TALLRec where it matters for the numbers: the strings and
the Alpaca template (:mod:`semid.gen.tallrec.data`), LoRA r 8 / alpha 16 /
dropout 0.05 on ``q_proj`` and ``v_proj``, lr 1e-4 with 20 warm-up steps and
linear decay, batch 128 in micro-batches of 32, the loss over the whole sequence
(``train_on_inputs=True``), few-shot training sets of 16 / 64 / 256 samples drawn
with a seed, up to 200 epochs with patience 10 on validation AUC, and the AUC
from ``P(Yes) / (P(Yes) + P(No))`` at the first answer token.

Changed, and why: the Yes / No token ids are found by tokenising the answers in
context (the reference hard-codes LLaMA-1's 8241 / 3782, which breaks with any
other tokenizer); the "Alpaca tuning" stage is skipped because the default base
model (SmolLM2-135M-Instruct) is already instruction-tuned; validation runs on a
seeded subset (``valid_samples``) to fit a CPU, and so may the test (``test_samples``,
the same prompts for every few-shot size under one seed).

Added: ``rendering=sid`` / ``title+sid`` shows items by a semid index's semantic
IDs; the code tokens are added to the tokenizer (new rows at the mean embedding)
and trained with the adapter, as LC-Rec does.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semid.errors import ParameterError
from semid.evaluation.candidates import auc
from semid.params import above, at_least, in_half_open
from semid.settings import Settings, setting

from ..runs import discard_on_failure, open_or_create_run
from ..llm.lora_state import TrainableStateMixin
from ..llm.loss import last_position_logits
from ..llm.pairs import encode_pair
from ..llm.rendering import RENDERINGS, add_rendering_tokens, check_rendering, tuned_item_texts
from ..training import Budget, Distributed, LoopSettings, Schedule, summarize, train_loop
from .data import build_samples, render_prompt, split_samples

__all__ = ["TallRecConfig", "TallRecTrainable", "evaluation_subsets", "train_tallrec", "yes_no_token_ids",
           "yes_probability"]

logger = logging.getLogger(__name__)


@dataclass
class TallRecConfig(Settings):
    """Every TALLRec setting (``semid train tallrec --set key=value``)."""

    owner = "tallrec"

    base_model: str | None = setting(None, "local causal LM folder (None: SmolLM2-135M-Instruct)", kind=str)
    device: str = setting("cpu", "torch device of the model (cpu, cuda, cuda:N, mps)")
    dtype: str = setting("float32", "weights' dtype: float32, or bfloat16 / float16 for 7B-class models on a GPU",
                         choices=("float32", "bfloat16", "float16"))
    samples: int = setting(64, "few-shot training samples (paper: 16, 64, 256)", check=at_least(1))
    history: int = setting(10, "previous items per sample", check=at_least(1))
    like_above: float = setting(3.0, "a rating above this is a like")
    keep_last: int = setting(10_000, "last samples kept before the 8:1:1 split", check=at_least(10))
    order: str = setting("user", "sample order before the split: the reference's 'user' or 'time'",
                         choices=("user", "time"))
    noun: str = setting("movie", "what the prompt calls an item")
    rendering: str = setting("title", "how items appear: title (the paper), sid or title+sid (a semid index's "
                             "code tokens, added to the LLM and trained with LoRA)", choices=RENDERINGS)
    index: str | None = setting(None, "semid index folder for the sid renderings", kind=str)
    lora_r: int = setting(8, "LoRA rank", check=at_least(1))
    lora_alpha: int = setting(16, "LoRA scale", check=at_least(1))
    lora_dropout: float = setting(0.05, "LoRA dropout", check=in_half_open(0.0, 1.0))
    activation_checkpointing: bool = setting(False, "recompute decoder activations in the backward pass "
                                             "(less memory, about 1.3x the compute: 7B-class models on one GPU)")
    target_modules: str = setting("q_proj,v_proj", "comma-separated linear layers under LoRA")
    learning_rate: float = setting(1e-4, "AdamW learning rate", check=above(0.0))
    warmup_steps: int = setting(20, "linear warm-up steps", check=at_least(0))
    batch_size: int = setting(128, "samples per optimizer step", check=at_least(1))
    micro_batch: int = setting(32, "samples per forward pass", check=at_least(1))
    max_epochs: int = setting(200, "epochs at most", check=at_least(1))
    patience: int = setting(10, "validations without a better AUC before stopping", check=at_least(1))
    eval_every: int = setting(1, "epochs between validations", check=at_least(1))
    valid_samples: int = setting(200, "seeded subset of the validation split", check=at_least(2))
    test_samples: int = setting(0, "seeded subset of the test split (0: all of it; each test prompt is one "
                                "forward pass of the LLM, the untuned model's AUC included)", check=at_least(0))
    train_on_inputs: bool = setting(True, "loss over the whole sequence, as the reference")
    max_length: int = setting(512, "longest sample in tokens (the reference's cutoff)", check=at_least(16))
    checkpoint_minutes: float = setting(10.0, "minutes between checkpoints", check=above(0.0))
    seed: int = setting(0, "seed of the few-shot draw, order and initialisation", check=at_least(0))

    def check_together(self) -> None:
        check_rendering("tallrec", self.rendering, self.index)


def evaluation_subsets(valid: list, test: list, config: TallRecConfig) -> tuple[list, list]:
    """The seeded validation subset (``valid_samples``) and test subset (``test_samples``, 0: all).

    Both draws depend on ``seed`` alone, never on the few-shot size, so runs with 16, 64 and 256
    samples are validated and tested on the same prompts.
    """
    valid = random.Random(config.seed + 1).sample(valid, min(config.valid_samples, len(valid)))
    if config.test_samples:
        test = random.Random(config.seed + 2).sample(test, min(config.test_samples, len(test)))
    return valid, test


def yes_no_token_ids(tokenizer, prompt: str) -> tuple[int, int]:
    """Ids of the first token of "Yes." and of "No." right after ``prompt`` (found in context).

    Raises:
        ParameterError: the answers do not start with distinct single tokens after the prompt.
    """
    head = tokenizer(prompt)["input_ids"]
    ids = []
    for answer in ("Yes.", "No."):
        full = tokenizer(prompt + answer)["input_ids"]
        if full[: len(head)] != head or len(full) == len(head):
            raise ParameterError("the tokenizer merges the answer into the prompt; TALLRec needs a clean boundary")
        ids.append(full[len(head)])
    if ids[0] == ids[1]:
        raise ParameterError("'Yes.' and 'No.' start with the same token under this tokenizer")
    return ids[0], ids[1]


def yes_probability(model, tokenizer, prompts: list[str], yes: int, no: int, *, batch_size: int = 16) -> np.ndarray:
    """``P(Yes) / (P(Yes) + P(No))`` at the first answer token of each prompt: ``float64 (n,)``."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            rows = [tokenizer(p)["input_ids"] for p in prompts[start : start + batch_size]]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, row in enumerate(rows):  # left padding: the answer's first token comes next for every row
                ids[r, width - len(row):] = torch.tensor(row)
                mask[r, width - len(row):] = 1
            logits = last_position_logits(model, ids, mask)  # (rows, V)
            two = torch.softmax(logits[:, [yes, no]], dim=-1)
            out.append(two[:, 0].cpu().numpy().astype(np.float64))
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)


class TallRecTrainable(TrainableStateMixin):
    """TALLRec's part of the shared loop: few-shot yes/no batches, causal-LM loss, validation AUC."""

    name = "tallrec"

    def __init__(self, model, tokenizer, optimizer, encoded, valid_prompts, valid_labels, yes, no,
                 config: TallRecConfig, total_steps: int):
        self.model, self.tokenizer, self.optimizer = model, tokenizer, optimizer
        self.encoded, self.valid_prompts, self.valid_labels = encoded, valid_prompts, valid_labels
        self.yes, self.no, self.config, self.total_steps = yes, no, config, total_steps
        self.schedule = Schedule("linear", total_steps=max(total_steps, 1), warmup_steps=config.warmup_steps)
        self.step = 0

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = list(range(len(self.encoded)))
        random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
        size = self.config.batch_size
        return [order[i : i + size] for i in range(0, len(order), size)]

    def _lr(self) -> float:
        return self.config.learning_rate * self.schedule(self.step)

    def train_step(self, batch: list[int]) -> tuple[float, int]:
        import torch

        from ..llm.loss import response_loss

        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        pad = self.tokenizer.pad_token_id
        total = 0.0
        chunks = [batch[i : i + self.config.micro_batch] for i in range(0, len(batch), self.config.micro_batch)]
        for chunk in chunks:
            rows = [self.encoded[i] for i in chunk]
            width = max(len(ids) for ids, _ in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            labels = torch.full((len(rows), width), -100, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, (row, prompt_length) in enumerate(rows):
                ids[r, : len(row)] = torch.tensor(row)
                mask[r, : len(row)] = 1
                first = 0 if self.config.train_on_inputs else prompt_length
                labels[r, first : len(row)] = torch.tensor(row[first:])
            loss = response_loss(self.model, ids, mask, labels) * len(chunk) / len(batch)
            loss.backward()
            total += float(loss.detach())
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return total, len(batch)

    def validate(self) -> dict[str, Any]:
        scores = yes_probability(self.model, self.tokenizer, self.valid_prompts, self.yes, self.no)
        return {"auc": round(auc(scores, self.valid_labels), 6), "users": len(self.valid_labels)}

#: Settings that may change when a run is resumed.
RESUMABLE = frozenset({"max_epochs", "patience", "checkpoint_minutes", "eval_every",
                       "activation_checkpointing"})


def train_tallrec(dataset, out, config: TallRecConfig, *, budget_minutes: float | None = None, resume: bool = False,
                  overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Rec-tune a causal LM on ``config.samples`` yes/no samples of ``dataset``; test AUC of the best weights.

    Returns the shared summary plus ``test_auc`` (best checkpoint), ``test_auc_base``
    (the untuned model, the zero-shot baseline) and the split sizes.
    """
    import torch

    from ..llm.adapters import make_trainable
    from ..llm.base_model import load_causal_lm

    budget = Budget(budget_minutes)
    config.validate()
    samples = build_samples(dataset, history=config.history, like_above=config.like_above, keep_last=config.keep_last,
                            order=config.order)
    train, valid, test = split_samples(samples)
    if len(train) < config.samples:
        raise ParameterError(f"tallrec: {config.samples} training samples asked for, the split has {len(train)}")
    rng = random.Random(config.seed)
    shots = rng.sample(train, config.samples)
    valid, test = evaluation_subsets(valid, test, config)
    texts, index = tuned_item_texts(dataset, config.rendering, config.index)
    render = texts.__getitem__
    dist = Distributed()
    run = open_or_create_run(out, dist, model_type="tallrec", config=config.to_dict(), dataset=dataset,
                             index_path=config.index if index is not None else None,
                             fingerprint=index.fingerprint if index is not None else None,
                             resume=resume, overwrite=overwrite, resumable_keys=RESUMABLE)
    with discard_on_failure(run, dist):
        torch.manual_seed(config.seed)
        model, tokenizer = load_causal_lm(config.base_model, dtype=config.dtype, device=config.device)
        code_ids = add_rendering_tokens(model, tokenizer, index)
        prompts = {id(s): render_prompt(s, render, noun=config.noun) for s in [*shots, *valid, *test]}
        yes, no = yes_no_token_ids(tokenizer, prompts[id(shots[0])])
        fresh = not run.has_checkpoint("last")
        base_auc = (auc(yes_probability(model, tokenizer, [prompts[id(s)] for s in test], yes, no),
                        [s.label for s in test]) if fresh else None)
        model = make_trainable(model, code_ids, r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout,
                               target_modules=[m.strip() for m in config.target_modules.split(",") if m.strip()],
                               activation_checkpointing=config.activation_checkpointing)
        encoded = []
        for s in shots:
            prompt_ids, answer = encode_pair(tokenizer, prompts[id(s)], "Yes." if s.label else "No.")
            row = (prompt_ids + answer)[-config.max_length:]
            encoded.append((row, max(0, len(row) - len(answer))))
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
        steps_per_epoch = math.ceil(len(encoded) / config.batch_size)
        trainable = TallRecTrainable(model, tokenizer, optimizer, encoded, [prompts[id(s)] for s in valid],
                                     [s.label for s in valid], yes, no, config, steps_per_epoch * config.max_epochs)
        if fresh:
            run.log("start", samples=len(shots), valid=len(valid), test=len(test), test_auc_base=base_auc,
                    yes_token=yes, no_token=no)
    settings = LoopSettings(max_epochs=config.max_epochs, patience=config.patience, eval_every=config.eval_every,
                            checkpoint_minutes=config.checkpoint_minutes, budget_minutes=budget_minutes, metric="auc")
    state = train_loop(trainable, run, settings, budget=budget, progress=progress)
    directory, _ = run.load_checkpoint("best")
    trainable.load_weights(directory)
    test_scores = yes_probability(model, tokenizer, [prompts[id(s)] for s in test], yes, no)
    test_auc = auc(test_scores, [s.label for s in test])
    if base_auc is None:
        base_auc = next((r.get("test_auc_base") for r in run.read_log() if r.get("event") == "start"), None)
    run.log("test", auc=test_auc, n=len(test))
    return summarize(run, state, settings, test_auc=test_auc, test_auc_base=base_auc,
                     split={"train": len(train), "valid": len(valid), "test": len(test), "shots": len(shots),
                            "test_likes": sum(s.label for s in test)})
