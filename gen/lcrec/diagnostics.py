"""Is an LC-Rec model conditioning on the history? The collapse checks of TIGER, for a causal LM.

On real validation cases of a trained run:

- :func:`position_nll`: teacher-forced NLL of each code token of the target item
  after the recommendation prompt, both over the whole vocabulary (what training
  optimises) and renormalised over that level's code tokens (what constrained
  decoding compares), next to unigram/bigram tables of the codes
  (:func:`semid.gen.collapse.token_table_nll`);
- :func:`semid.gen.collapse.list_diversity`: distinct@10 and the swap test;
- :func:`swap_history_kl`: KL between the first-code distributions for a user's
  own history and for another user's (near 0: the history is not read), the
  causal-LM counterpart of TIGER's zeroed-encoder KL.

:func:`diagnose_lcrec_run` runs them all and gives a verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from semid.evaluation.split import EvalCase, sample_cases

from ..collapse import HEALTHY, list_diversity, token_table_nll

__all__ = ["diagnose_lcrec", "diagnose_lcrec_run", "position_nll", "swap_history_kl"]


def _level_token_ids(recommender) -> list[torch.Tensor]:
    """Model token ids of each level's code tokens: ``int64 (level_size,)`` per level."""
    vocab = recommender.index.vocab
    offsets = vocab.level_offsets()
    return [recommender.token_map[offsets[level] : offsets[level] + size]
            for level, size in enumerate(vocab.level_sizes)]


def _target_ids(recommender, item: str) -> list[int]:
    vocab_ids = recommender.index.vocab.token_ids(recommender.index.encode(item))
    return [int(recommender.token_map[i]) for i in vocab_ids]


@torch.no_grad()
def _code_logits(recommender, cases: Sequence[EvalCase], histories, batch_size: int):
    """Yield ``(case, float (n_code, V) logits predicting each code token of the target)`` per case."""
    model = recommender.model
    device = next(model.parameters()).device
    pad = recommender.tokenizer.pad_token_id or 0
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        prompts = [recommender.prompt_ids(h) for h in histories[start : start + batch_size]]
        targets = [_target_ids(recommender, c.target) for c in chunk]
        rows = [p + t for p, t in zip(prompts, targets)]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):  # right padding: positions line up with the unpadded sequence
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
        for r, (case, prompt, target) in enumerate(zip(chunk, prompts, targets)):
            first = len(prompt) - 1  # logits at position t predict token t + 1
            yield case, target, logits[r, first : first + len(target)]


def position_nll(recommender, cases: Sequence[EvalCase], *, batch_size: int = 8) -> dict[str, list[float]]:
    """Mean NLL (nats) of each code position of the targets: ``{"full_vocab": [...], "within_level": [...]}``."""
    levels = _level_token_ids(recommender)
    n_levels = len(levels)
    full, within, count = np.zeros(n_levels), np.zeros(n_levels), np.zeros(n_levels)
    was_training = recommender.model.training
    recommender.model.eval()
    for _, target, logits in _code_logits(recommender, cases, [c.history for c in cases], batch_size):
        for p, token in enumerate(target):
            full[p] -= float(torch.log_softmax(logits[p], -1)[token])
            level = logits[p, levels[p]]
            within[p] -= float(torch.log_softmax(level, -1)[int((levels[p] == token).nonzero()[0, 0])])
            count[p] += 1
    recommender.model.train(was_training)
    safe = np.maximum(count, 1)
    return {"full_vocab": [round(float(x), 4) for x in full / safe],
            "within_level": [round(float(x), 4) for x in within / safe]}


def swap_history_kl(recommender, cases: Sequence[EvalCase], *, seed: int = 0, batch_size: int = 8) -> float:
    """Mean KL(p(first code | own history) || p(first code | another user's history)), nats, within level 1."""
    n = len(cases)
    if n < 2:
        return float("nan")
    partner = (np.arange(n) + np.random.default_rng(seed).integers(1, n, size=n)) % n
    first = _level_token_ids(recommender)[0]
    was_training = recommender.model.training
    recommender.model.eval()
    own = [torch.log_softmax(lg[0, first], -1)
           for _, _, lg in _code_logits(recommender, cases, [c.history for c in cases], batch_size)]
    other = [torch.log_softmax(lg[0, first], -1)
             for _, _, lg in _code_logits(recommender, cases, [cases[int(j)].history for j in partner], batch_size)]
    recommender.model.train(was_training)
    kl = [float((a.exp() * (a - b)).sum()) for a, b in zip(own, other)]
    return round(float(np.mean(kl)), 4)


def diagnose_lcrec(recommender, cases: Sequence[EvalCase], *, train_targets: Sequence[str], n_items: int,
                   seed: int = 0) -> dict[str, Any]:
    """Every check on ``cases``; a JSON-ready dict with a verdict (as TIGER's :func:`diagnose`)."""
    index = recommender.index
    report: dict[str, Any] = {"users": len(cases)}
    model_nll = position_nll(recommender, cases)
    tables = token_table_nll(lambda item: list(index.encode(item)), train_targets, cases)
    report["position_nll"] = {"model": model_nll["within_level"], "model_full_vocab": model_nll["full_vocab"],
                              **tables}
    report.update(list_diversity(recommender, cases, seed=seed, n_items=n_items))
    report["swap_history_kl"] = swap_history_kl(recommender, cases, seed=seed)
    reasons = []
    if report["distinct@10"] < report["collapse_floor"]:
        reasons.append(f"distinct@10 {report['distinct@10']} < floor {report['collapse_floor']}")
    for key in ("swap_overlap@10", "swap_history_kl"):
        side, level = HEALTHY[key]
        value = report[key]
        if (value >= level) if side == "below" else (value <= level):
            reasons.append(f"{key} {value} is not {side} {level}")
    report["warnings"] = [
        f"NLL of code position {p} ({m}) is not below the bigram table's ({b})"
        for p, (m, b) in enumerate(zip(report["position_nll"]["model"], tables["bigram"])) if m >= b
    ]
    report["verdict"] = "collapsed" if reasons else "healthy"
    report["reasons"] = reasons
    return report


def diagnose_lcrec_run(run_path, dataset, *, users: int = 200, split: str = "valid", seed: int = 0,
                       num_beams: int | None = None) -> dict[str, Any]:
    """:func:`diagnose_lcrec` on an LC-Rec run directory and a seeded sample of ``users`` cases of ``split``."""
    from semid.evaluation import leave_one_out

    from ..runs import open_run
    from .run import load_lcrec_run

    open_run(run_path).check_dataset(dataset)
    recommender = load_lcrec_run(run_path, num_beams=num_beams)
    split_data = leave_one_out(dataset, max_history=recommender.max_history)
    cases = sample_cases(split_data.cases(split), users, seed)
    train_targets = [item for seq in split_data.train_sequences for item in seq[1:]]
    report = diagnose_lcrec(recommender, cases, train_targets=train_targets, n_items=len(dataset.items), seed=seed)
    return {"run": str(run_path), "split": split, "seed": seed, **report}
