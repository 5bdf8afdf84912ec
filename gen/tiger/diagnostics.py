"""Is a TIGER model conditioning on the history? Measurements a user can run on a run.

Every check here answers one question about a trained (or training) model, on
real validation cases, and returns plain numbers (JSON-serialisable):

- :func:`position_nll`: teacher-forced validation NLL per code position, next to
  what a unigram and a bigram table of the codes (fitted on the training
  targets) achieve. A model that ignores the encoder predicts the first code no
  better than the unigram table.
- :func:`list_diversity`: distinct items in the top-10 lists of N users, and the
  mean top-10 overlap between a user's list and the list for another user's
  history (the "swap test"; 1.0 means the history does not matter).
- :func:`encoder_ablation_kl`: KL between the first-code distribution with the
  real encoder output and with the encoder output zeroed (near 0: the decoder
  does not read the encoder).
- :func:`encoder_cosine`: mean cosine of mean-pooled encoder states between
  different users (near 1: every history encodes to the same vector).
- :func:`weight_growth`: per-group weight norm against the same model's
  initialisation (the seeded init is rebuilt; large growth of attention
  weights preceded collapse in published reproductions).

:func:`diagnose` runs them all. The thresholds in :data:`HEALTHY` come from a
published healthy/collapsed pair of Beauty runs (see benchmarks/results/tiger.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from semid.evaluation.split import DEFAULT_MAX_HISTORY, EvalCase, sample_cases

from ..collapse import HEALTHY, list_diversity, token_table_nll
from ..decoding.level_softmax import level_mask, restrict_to_level
from .layout import PAD_ID, TokenLayout

__all__ = [
    "HEALTHY",
    "code_table_nll",
    "diagnose",
    "encoder_ablation_kl",
    "encoder_cosine",
    "list_diversity",
    "position_nll",
    "weight_growth",
]



def _encoder_batch(layout: TokenLayout, cases: Sequence[EvalCase], max_history: int) -> dict[str, torch.Tensor]:
    """``input_ids`` / ``attention_mask`` ``int64 (B, S)`` for the cases' histories (right padded)."""
    rows = [layout.encoder_ids(layout.positions(list(c.history)[-max_history:]), c.user_id) for c in cases]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.from_numpy(row)
    return {"input_ids": ids, "attention_mask": (ids != PAD_ID).long()}


def _target_tokens(layout: TokenLayout, cases: Sequence[EvalCase]) -> torch.Tensor:
    """Decoder targets ``int64 (B, T)``, -100 after a shorter code."""
    tokens = [layout.item_tokens[layout.position(c.target)] for c in cases]
    out = torch.full((len(cases), layout.max_target_len), -100, dtype=torch.long)
    for r, t in enumerate(tokens):
        out[r, : len(t)] = torch.from_numpy(t)
    return out


@torch.no_grad()
def position_nll(
    model, layout: TokenLayout, cases: Sequence[EvalCase], *, max_history: int = DEFAULT_MAX_HISTORY, batch_size: int = 256
) -> list[float]:
    """Teacher-forced mean NLL (nats) of each target position (code levels, then EOS if any)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = torch.zeros(layout.max_target_len, dtype=torch.float64)
    level = level_mask(model.config, int(model.config.vocab_size))
    count = torch.zeros(layout.max_target_len, dtype=torch.float64)
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        inputs = {k: v.to(device) for k, v in _encoder_batch(layout, chunk, max_history).items()}
        labels = _target_tokens(layout, chunk).to(device)
        decoder = torch.cat([torch.full_like(labels[:, :1], PAD_ID), labels[:, :-1].clamp(min=0)], dim=1)
        logits = model(**inputs, decoder_input_ids=decoder).logits.float()
        depth = torch.arange(logits.shape[1], device=logits.device).expand(logits.shape[:2])
        logits = restrict_to_level(logits, depth, level)
        nll = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), labels, ignore_index=-100, reduction="none"
        )
        valid = labels != -100
        total += (nll * valid).sum(0).double().cpu()
        count += valid.sum(0).double().cpu()
    model.train(was_training)
    return [round(float(t / c), 4) if c > 0 else float("nan") for t, c in zip(total, count)]


def code_table_nll(
    layout: TokenLayout, train_targets: Sequence[str], cases: Sequence[EvalCase]
) -> dict[str, list[float]]:
    """NLL per target position of a unigram and a bigram table of TIGER's target tokens (see
    :func:`semid.gen.collapse.token_table_nll`)."""
    return token_table_nll(lambda item: layout.item_tokens[layout.position(item)].tolist(), train_targets, cases)


def _encoded(model, layout: TokenLayout, cases: Sequence[EvalCase], max_history: int, batch_size: int):
    """Yield ``(inputs, states)`` per batch of cases: encoder inputs and ``float (B, S, d)`` outputs (eval mode)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for start in range(0, len(cases), batch_size):
            chunk = cases[start : start + batch_size]
            inputs = {k: v.to(device) for k, v in _encoder_batch(layout, chunk, max_history).items()}
            yield inputs, model.encoder(**inputs).last_hidden_state
    finally:
        model.train(was_training)


@torch.no_grad()
def encoder_ablation_kl(
    model, layout: TokenLayout, cases: Sequence[EvalCase], *, max_history: int = DEFAULT_MAX_HISTORY, batch_size: int = 256
) -> float:
    """Mean KL(p(first token | encoder) || p(first token | zeroed encoder output)), nats."""
    total, count = 0.0, 0
    level = level_mask(model.config, int(model.config.vocab_size))
    for inputs, states in _encoded(model, layout, cases, max_history, batch_size):
        start_ids = torch.full((states.shape[0], 1), PAD_ID, dtype=torch.long, device=states.device)

        def first_token(encoded: torch.Tensor) -> torch.Tensor:
            logits = model(encoder_outputs=(encoded,), attention_mask=inputs["attention_mask"],
                           decoder_input_ids=start_ids).logits
            return restrict_to_level(logits[:, 0].float(), 0, level).log_softmax(-1)

        real, zero = first_token(states), first_token(torch.zeros_like(states))
        total += float((real.exp() * (real - zero)).sum())
        count += states.shape[0]
    return round(total / max(count, 1), 5)


@torch.no_grad()
def encoder_cosine(
    model, layout: TokenLayout, cases: Sequence[EvalCase], *, max_history: int = DEFAULT_MAX_HISTORY, batch_size: int = 256
) -> float:
    """Mean pairwise cosine of mean-pooled (over non-padding tokens) encoder states between cases."""
    pooled = []
    for inputs, states in _encoded(model, layout, cases, max_history, batch_size):
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        pooled.append(((states.float() * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu())
    vectors = torch.nn.functional.normalize(torch.cat(pooled), dim=-1)
    n = vectors.shape[0]
    if n < 2:
        return float("nan")
    gram = vectors @ vectors.T
    return round(float((gram.sum() - gram.diagonal().sum()) / (n * (n - 1))), 4)


def weight_growth(model, initial) -> dict[str, float]:
    """Norm ratio ``||W|| / ||W_init||`` averaged over matrices of each kind.

    Kinds: ``embedding``, ``attention`` (q/k/v/o of self- and cross-attention),
    ``feed_forward``, ``layer_norm``. ``initial`` is the same architecture at
    initialisation (e.g. :func:`semid.gen.tiger.model.build_model` with the run's seed).
    """
    start = dict(initial.named_parameters())
    groups: dict[str, list[float]] = {}
    for name, param in model.named_parameters():
        if name not in start:
            continue
        if "layer_norm" in name:
            kind = "layer_norm"
        elif "DenseReluDense" in name:
            kind = "feed_forward"
        elif any(f".{x}.weight" in name for x in "qkvo"):
            kind = "attention"
        elif "shared" in name or "embed" in name:
            kind = "embedding"
        else:
            continue
        base = float(start[name].detach().norm())
        if base > 0:
            groups.setdefault(kind, []).append(float(param.detach().norm()) / base)
    return {kind: round(float(np.mean(v)), 3) for kind, v in sorted(groups.items())}


def diagnose(
    model,
    tokenizer,
    layout: TokenLayout,
    cases: Sequence[EvalCase],
    *,
    train_targets: Sequence[str],
    initial=None,
    max_history: int = DEFAULT_MAX_HISTORY,
    num_beams: int = 20,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Every check on ``cases`` (e.g. a seeded sample of validation cases); a JSON-ready dict.

    ``verdict`` is ``"healthy"`` or ``"collapsed"`` with the reasons: distinct@10
    below :func:`semid.gen.collapse.collapse_floor`, or a check on the wrong
    side of :data:`HEALTHY`. ``warnings`` lists code positions the model predicts
    no better than the bigram table (undertrained, or ignoring the encoder).
    """
    from .recommender import TigerRecommender

    recommender = TigerRecommender(model, tokenizer, layout, num_beams=num_beams, max_history=max_history,
                                   device=device)
    report: dict[str, Any] = {"users": len(cases)}
    model_nll = position_nll(model, layout, cases, max_history=max_history)
    tables = code_table_nll(layout, train_targets, cases)
    report["position_nll"] = {"model": model_nll, **tables}
    report.update(list_diversity(recommender, cases, seed=seed))
    report["zero_encoder_kl"] = encoder_ablation_kl(model, layout, cases, max_history=max_history)
    report["encoder_cosine"] = encoder_cosine(model, layout, cases, max_history=max_history)
    if initial is not None:
        report["weight_growth"] = weight_growth(model, initial)
    reasons = []
    if report["distinct@10"] < report["collapse_floor"]:
        reasons.append(f"distinct@10 {report['distinct@10']} < floor {report['collapse_floor']}")
    for key, (side, level) in HEALTHY.items():
        if key not in report:  # a check of another generator
            continue
        value = report[key]
        bad = value >= level if side == "below" else value <= level
        if bad:
            reasons.append(f"{key} {value} is not {side} {level}")
    # Not a collapse sign by itself (an early, still uncalibrated model can be above
    # the table while ranking well), but together with the others it is the classic one.
    warnings = [
        f"NLL of position {p} ({m}) is not below the bigram table's ({b})"
        for p, (m, b) in enumerate(zip(model_nll, tables["bigram"]))
        if m >= b
    ]
    report["verdict"] = "collapsed" if reasons else "healthy"
    report["reasons"] = reasons
    report["warnings"] = warnings
    return report


def diagnose_run(
    run_path,
    dataset,
    *,
    index_path=None,
    checkpoint: str = "best",
    users: int = 2000,
    split: str = "valid",
    seed: int = 0,
    num_beams: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """:func:`diagnose` on a TIGER run directory, on a seeded sample of ``users`` cases of ``split``.

    The initial weights for :func:`weight_growth` are rebuilt from the run's
    config (initialisation depends only on its seed).
    """
    from semid.evaluation import leave_one_out

    from .config import TigerConfig
    from .model import build_model
    from .recommender import load_tiger

    from ..runs import open_run

    open_run(run_path).check_dataset(dataset)
    recommender = load_tiger(run_path, index_path=index_path, checkpoint=checkpoint, device=device)
    config = TigerConfig.from_dict(_run_config(run_path))
    split_data = leave_one_out(dataset, max_history=config.max_history)
    cases = sample_cases(split_data.cases(split), users, seed)
    train_targets = [item for seq in split_data.train_sequences for item in seq[1:]]
    initial = build_model(config, recommender.layout)
    report = diagnose(
        recommender.model, recommender.tokenizer, recommender.layout, cases, train_targets=train_targets,
        initial=initial, max_history=config.max_history, num_beams=num_beams or config.eval_beams,
        seed=seed, device=device,
    )
    return {"run": str(run_path), "checkpoint": checkpoint, "split": split, "seed": seed, **report}


def _run_config(run_path) -> dict[str, Any]:
    from ..runs import open_run

    return open_run(run_path).config
