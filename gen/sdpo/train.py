"""S-DPO: supervised tuning, then softmax DPO against a frozen reference, over 20-candidate prompts.

Pipeline (chenyuxin1999/S-DPO, on the shared loop :mod:`semid.gen.training`):

1. **SFT** (run ``OUT/sft``): LoRA (r 8, alpha 32, dropout 0.1 on every projection)
   trained on ``prompt -> target title + EOS``, the loss on the answer only.
2. **S-DPO** (run ``OUT/sdpo``): the SFT adapter is merged into the weights, which
   become the frozen reference (a fresh LoRA on top is the policy; disabling it
   gives the reference exactly); per prompt, ``negatives`` rejected answers are
   drawn from the 19 non-target candidates, log-probabilities are summed over
   answer tokens, and :func:`semid.gen.sdpo.loss.sdpo_loss` with ``beta`` is minimised.

Evaluation as the reference's ``evaluate_batch.py``: greedy decoding of
``max_new_tokens`` tokens, an answer is valid when exactly one candidate title
occurs in it, and a hit when that title is the target; both HR@1 definitions and
the valid ratio are reported for the SFT model and the S-DPO model, with the gain.
Validation (checkpoint choice and early stopping) uses HR@1 over all prompts on
a seeded validation sample; the reference selects by validation loss.

The prompt is written after the reference's templates (history and candidates
joined with ", ", "Answer: " at the end); the reference draws one of ten
templates at random, semid uses one per domain.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semid.errors import ParameterError
from semid.evaluation.candidates import hit_rate_at_1, popularity_on_candidates
from semid.evaluation.split import leave_one_out, sample_cases
from semid.params import above, at_least, in_half_open
from semid.settings import Settings, setting

from ..llm.candidates import sample_candidates
from ..llm.parsing import parse_substring
from ..llm.rendering import RENDERINGS, add_rendering_tokens, check_rendering, tuned_item_texts
from ..runs import discard_on_failure, open_or_create_run
from ..llm.lora_state import TrainableStateMixin
from ..training import Budget, Distributed, LoopSettings, summarize, train_loop
from ..llm.loss import shared_prompt_logprob_sums
from ..llm.pairs import encode_pair, pad_pairs
from .loss import reward_accuracy, sdpo_loss

__all__ = ["SDPOConfig", "build_prompt", "train_sdpo"]

logger = logging.getLogger(__name__)

_WORDS = {"movie": ("watched", "movie", "watch"), "product": ("purchased", "product", "purchase"),
          "music": ("listened to", "artist", "listen to")}


def build_prompt(history: list[str], candidates: list[str], domain: str = "product") -> str:
    past, item, verb = _WORDS[domain]
    return (f"This user has {past} {', '.join(history)} in the previous. Please predict the next {item} this user "
            f"will {verb}. Choose the answer from the following {len(candidates)} {item} titles: "
            f"{', '.join(candidates)}. Answer: ")


@dataclass
class SDPOConfig(Settings):
    """Every S-DPO setting (``semid train sdpo --set key=value``)."""

    owner = "sdpo"

    base_model: str | None = setting(None, "local causal LM folder (None: SmolLM2-135M-Instruct)", kind=str)
    device: str = setting("cpu", "torch device of the model (cpu, cuda, cuda:N, mps)")
    dtype: str = setting("float32", "weights' dtype: float32, or bfloat16 / float16 for 7B-class models on a GPU",
                         choices=("float32", "bfloat16", "float16"))
    domain: str = setting("product", "wording of the prompt", choices=tuple(_WORDS))
    candidates: int = setting(20, "candidates per prompt", check=at_least(2))
    negatives: int = setting(3, "rejected answers per prompt (K; 1 = DPO)", check=at_least(1))
    beta: float = setting(1.0, "DPO temperature", check=above(0.0))
    max_history: int = setting(20, "history items in the prompt", check=at_least(1))
    train_users: int = setting(0, "seeded sample of training users (0: all)", check=at_least(0))
    valid_users: int = setting(100, "seeded validation sample", check=at_least(1))
    test_users: int = setting(200, "seeded test sample", check=at_least(1))
    lora_r: int = setting(8, "LoRA rank", check=at_least(1))
    lora_alpha: int = setting(32, "LoRA scale", check=at_least(1))
    lora_dropout: float = setting(0.1, "LoRA dropout", check=in_half_open(0.0, 1.0))
    sft_lr: float = setting(1e-4, "SFT learning rate (the reference: 1e-5 for 7B)", check=above(0.0))
    sdpo_lr: float = setting(1e-5, "S-DPO learning rate", check=above(0.0))
    sft_epochs: int = setting(5, "SFT epochs", check=at_least(1))
    sdpo_epochs: int = setting(3, "S-DPO epochs", check=at_least(1))
    batch_size: int = setting(8, "prompts per step", check=at_least(1))
    patience: int = setting(3, "validations without a better HR@1 before stopping a stage", check=at_least(1))
    max_new_tokens: int = setting(20, "answer length at evaluation", check=at_least(1))
    checkpoint_minutes: float = setting(10.0, "minutes between checkpoints", check=above(0.0))
    rendering: str = setting("title", "how items appear: title, sid or title+sid (a semid index's code tokens, "
                             "added to the LLM and trained with LoRA)", choices=RENDERINGS)
    index: str | None = setting(None, "semid index folder for the sid renderings", kind=str)
    seed: int = setting(0, "seed of users, candidates, negatives and initialisation", check=at_least(0))

    def check_together(self) -> None:
        check_rendering("sdpo", self.rendering, self.index)
        if self.negatives > self.candidates - 1:
            raise ParameterError(f"sdpo: {self.negatives} negatives from {self.candidates - 1} non-target candidates")


@dataclass
class _Prompt:
    text: str
    target: str  # title
    others: list[str]  # the other candidates' titles
    candidates: list[str]  # item ids
    target_item: str


def _prompts(dataset, cases, config: SDPOConfig, titles, seed: int) -> list[_Prompt]:
    lists = sample_candidates(cases, dataset.items.item_ids, n=config.candidates, seed=seed)
    out = []
    for c in lists:
        shown = [titles[i] for i in c.candidates]
        text = build_prompt([titles[i] for i in c.history[-config.max_history:]], shown, config.domain)
        out.append(_Prompt(text, titles[c.target], [titles[i] for i in c.candidates if i != c.target],
                           list(c.candidates), c.target))
    return out


def _evaluate(model, tokenizer, prompts: list[_Prompt], titles, config: SDPOConfig) -> dict[str, float]:
    from ..llm.backend import LocalCausalLM

    backend = LocalCausalLM(model, tokenizer, chat=False, batch_size=8)
    answers = backend.generate([p.text for p in prompts], max_new_tokens=config.max_new_tokens)
    first, valid = [], []
    for p, answer in zip(prompts, answers):
        # Added code tokens may decode with spaces between them; a rendering never has "> <".
        answer = re.sub(r">\s+<", "><", answer) if config.rendering != "title" else answer
        result = parse_substring(answer, p.candidates, {i: titles[i] for i in p.candidates})
        first.append(result.ranked[0] if result.ranked else None)
        valid.append(result.valid)
    metrics = hit_rate_at_1(first, valid, [p.target_item for p in prompts])
    return {k: round(v, 6) for k, v in metrics.items()}


def _answer_logprobs(model, tokenizer, prompt: str, answers: list[str]):
    """``float (len(answers),)`` summed log-probabilities of each answer (+ EOS) after ``prompt``, with gradients.

    The prompt (nearly all the tokens) runs once for all K + 1 answers.
    """
    pairs = [encode_pair(tokenizer, prompt, answer) for answer in answers]
    return shared_prompt_logprob_sums(model, pairs[0][0], [tail for _, tail in pairs])


class _Stage(TrainableStateMixin):
    """One stage (SFT or S-DPO) as a :class:`semid.gen.training.Trainable`."""

    def __init__(self, name, model, tokenizer, optimizer, prompts, valid, titles, config: SDPOConfig, stage: str):
        self.name, self.model, self.tokenizer, self.optimizer = name, model, tokenizer, optimizer
        self.prompts, self.valid, self.titles, self.config, self.stage = prompts, valid, titles, config, stage
        self.accuracy: list[float] = []

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Batches of prompt indices, each led by the epoch (it seeds the negatives of S-DPO)."""
        order = list(range(len(self.prompts)))
        random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
        size = self.config.batch_size
        return [[epoch, *order[i : i + size]] for i in range(0, len(order), size)]  # the epoch seeds negatives

    def train_step(self, batch: list[int]) -> tuple[float, int]:
        import torch

        from ..llm.loss import response_loss

        epoch, indices = batch[0], batch[1:]
        chosen = [self.prompts[i] for i in indices]
        self.model.train()
        if self.stage == "sft":
            pairs = [encode_pair(self.tokenizer, p.text, p.target) for p in chosen]
            loss = response_loss(self.model, *pad_pairs(pairs, self.tokenizer.pad_token_id))
        else:
            k = self.config.negatives
            rejected = []
            for i, p in zip(indices, chosen):  # seeded by (seed, epoch, prompt): a resumed run draws the same
                rejected.append(random.Random(hash((self.config.seed, epoch, i)) & 0xFFFFFFFF).sample(p.others, k))
            answers = [[p.target, *r] for p, r in zip(chosen, rejected)]
            policy = torch.stack([_answer_logprobs(self.model, self.tokenizer, p.text, a)
                                  for p, a in zip(chosen, answers)])  # (B, K + 1)
            with torch.no_grad(), self.model.disable_adapter():
                reference = torch.stack([_answer_logprobs(self.model, self.tokenizer, p.text, a)
                                         for p, a in zip(chosen, answers)])
            loss = sdpo_loss(policy[:, 0], policy[:, 1:], reference[:, 0], reference[:, 1:], beta=self.config.beta)
            self.accuracy.append(reward_accuracy(policy[:, 0].detach(), policy[:, 1:].detach(), reference[:, 0],
                                                 reference[:, 1:]))
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach()), len(chosen)

    def validate(self) -> dict[str, Any]:
        metrics = _evaluate(self.model, self.tokenizer, self.valid, self.titles, self.config)
        if self.accuracy:
            metrics["reward_accuracy"] = round(sum(self.accuracy) / len(self.accuracy), 4)
            self.accuracy = []
        return {**metrics, "users": len(self.valid)}

_RESUMABLE = frozenset({"patience", "checkpoint_minutes"})
# Settings the SFT stage never reads: a finished SFT stage is reused when only these change, so the
# preference stage can be retuned (delete OUT/sdpo, rerun with --resume and new values) without redoing SFT.
_SDPO_ONLY = frozenset({"sdpo_lr", "sdpo_epochs", "beta", "negatives"})


def train_sdpo(dataset, out, config: SDPOConfig, *, budget_minutes: float | None = None, resume: bool = False,
               overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Both stages into ``OUT/sft`` and ``OUT/sdpo``; test HR@1 of each stage's best weights and the gain.

    The budget covers this invocation (both stages); a stage stopped by it resumes with ``resume=True``.
    On resume the SFT stage accepts new values of the S-DPO-only settings (``sdpo_lr``,
    ``sdpo_epochs``, ``beta``, ``negatives``); the S-DPO stage, like every run, does not.
    """
    import torch

    from ..llm.adapters import make_trainable
    from ..llm.base_model import load_causal_lm

    budget = Budget(budget_minutes)
    config.validate()
    out = Path(out)
    if out.exists() and not (resume or overwrite):
        from semid.errors import ArtifactError

        raise ArtifactError(f"{out} already exists; pass --resume to continue it or --overwrite to replace it")
    titles, index = tuned_item_texts(dataset, config.rendering, config.index)  # how items are shown
    split = leave_one_out(dataset, max_history=config.max_history)
    train_cases = [type(split.test[0])(u, tuple(s[:-1][-config.max_history:]), s[-1])
                   for u, s in zip(split.train_users, split.train_sequences) if len(s) >= 2]
    train_cases = sample_cases(train_cases, config.train_users, config.seed)
    prompts = _prompts(dataset, train_cases, config, titles, config.seed)
    valid = _prompts(dataset, sample_cases(split.valid, config.valid_users, config.seed), config, titles, config.seed + 1)
    test = _prompts(dataset, sample_cases(split.test, config.test_users, config.seed), config, titles, config.seed + 2)
    lora = dict(r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout,
                target_modules=None)  # every projection of a LLaMA-style model, as the reference
    dist = Distributed()
    summaries = {}
    for stage, epochs, lr in (("sft", config.sft_epochs, config.sft_lr), ("sdpo", config.sdpo_epochs, config.sdpo_lr)):
        run = open_or_create_run(out / stage, dist, model_type=f"sdpo-{stage}", config=config.to_dict(),
                                 dataset=dataset, resume=resume, overwrite=overwrite,
                                 index_path=config.index if index is not None else None,
                                 fingerprint=index.fingerprint if index is not None else None,
                                 resumable_keys=_RESUMABLE | (_SDPO_ONLY if stage == "sft" else frozenset()))
        with discard_on_failure(run, dist):
            torch.manual_seed(config.seed)
            model, tokenizer = load_causal_lm(config.base_model, dtype=config.dtype, device=config.device)
            code_ids = add_rendering_tokens(model, tokenizer, index)
            model = make_trainable(model, code_ids, **lora)
            if stage == "sdpo":  # the SFT weights become the frozen reference; a fresh LoRA is the policy
                sft = _Stage("sft", model, tokenizer, None, [], [], titles, config, "sft")
                sft.load_weights(out / "sft" / "checkpoints" / "best")
                model = make_trainable(model.merge_and_unload(), code_ids, **lora)
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
            trainable = _Stage(stage, model, tokenizer, optimizer, prompts, valid, titles, config, stage)
        settings = LoopSettings(max_epochs=epochs, patience=config.patience, eval_every=1,
                                checkpoint_minutes=config.checkpoint_minutes,
                                budget_minutes=None if budget_minutes is None else
                                max(budget_minutes - budget.elapsed() / 60, 1e-3),
                                metric="hr@1_all")
        state = train_loop(trainable, run, settings, budget=Budget(settings.budget_minutes), progress=progress)
        trainable.load_weights(run.checkpoint_path("best"))
        summaries[stage] = {**summarize(run, state, settings), "test": _evaluate(model, tokenizer, test, titles, config)}
        run.log("test", **summaries[stage]["test"])
        if state.stopped == "budget":
            logger.warning("budget spent during the %s stage; continue with --resume", stage)
            break
    result = {"stages": summaries, "prompts": {"train": len(prompts), "valid": len(valid), "test": len(test)},
              "negatives": config.negatives, "beta": config.beta,
              "popularity_same_candidates": popularity_on_candidates(
                  split.train_sequences, [p.candidates for p in test], [p.target_item for p in test])}
    if "sdpo" in summaries:
        result["gain_hr@1_all"] = summaries["sdpo"]["test"]["hr@1_all"] - summaries["sft"]["test"]["hr@1_all"]
    return result
