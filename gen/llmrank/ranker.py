"""LLMRank: zero-shot ranking of a candidate list by a language model, over semid items.

The published protocol (:mod:`semid.gen.llmrank.prompts`): 20 candidates (19 random
unseen items + the ground truth, shuffled), the model writes a ranking, LLMRank's
parser maps its lines to candidates (``lcs``), the candidate ranked r-th (0-based)
scores ``n - r``, every unparsed candidate ties at the bottom; ``bootstrap`` rounds
with shuffled candidate orders add up their scores (the paper's remedy for position
bias). Variants, labelled as such in the results:

- ``scoring="loglik"``: no generation; each candidate is scored by the model's
  log-likelihood of its rendering as the answer (every candidate gets a score,
  so nothing is unparsed; this is exact constrained output over the candidate
  set, which beam search over a candidate trie could only approximate);
- ``scoring="constrained"``: the same answer prompt, decoded by beam search that
  can only write one of the candidates (a token trie over their renderings,
  summed log-probabilities, one beam per candidate); the beams' order is the
  ranking, candidates no beam reached tie at the bottom. It needs a local model
  (:meth:`LocalCausalLM.rank_options`);
- ``rendering="sid"`` / ``"title+sid"`` with ``parser="sid"``: candidates shown
  with their semantic IDs from a semid index, answers parsed by trie match.

``retry_if_missing_target`` reproduces the reference code's retry, which asks
again when the parsed list lacks the ground truth. That uses the label at test
time (an evaluation leak), so it is off by default and recorded when on.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from semid.errors import ParameterError
from semid.evaluation.candidates import candidate_ndcg, hit_rate_at_1
from semid.evaluation.split import leave_one_out, sample_cases
from semid.params import at_least
from semid.settings import Settings, setting

from ..llm.candidates import CandidateList, sample_candidates
from ..llm.parsing import parse
from ..llm.rendering import ON_MISSING, RENDERINGS, ItemRenderer
from .prompts import DOMAINS, PROMPTS, build_prompt

__all__ = ["LLMRankSettings", "llmrank_evaluate", "rank_candidates"]

logger = logging.getLogger(__name__)

UNPARSED = -10_000.0


@dataclass
class LLMRankSettings(Settings):
    """Every LLMRank setting (``--set key=value``)."""

    owner = "llmrank"

    prompt: str = setting("sequential", "prompt strategy", choices=PROMPTS)
    domain: str = setting("product", "wording of the prompt", choices=tuple(DOMAINS))
    candidates: int = setting(20, "candidates per user (the ground truth among them)", check=at_least(2))
    max_history: int = setting(50, "most recent history items in the prompt", check=at_least(1))
    rendering: str = setting("title", "how items appear", choices=RENDERINGS)
    on_missing: str = setting("error", "an untitled item under title rendering: refuse, or show its id",
                              choices=ON_MISSING)
    parser: str = setting("lcs", "how answers become rankings", choices=("lcs", "sid"))
    scoring: str = setting("generate", "write a ranking, or score each candidate's likelihood",
                           choices=("generate", "loglik", "constrained"))
    bootstrap: int = setting(1, "rounds with shuffled candidate orders, scores summed", check=at_least(1))
    position: str = setting("shuffle", "ground-truth position: 'shuffle' or a fixed 0-based index")
    max_new_tokens: int = setting(512, "answer length", check=at_least(1))
    temperature: float = setting(0.0, "0 = greedy (the paper used 0.2 with ChatGPT)", check=at_least(0.0))
    retry_if_missing_target: bool = setting(False, "the reference's label-dependent retry (a leak; off)")
    seed: int = setting(0, "seed of candidates and bootstrap orders", check=at_least(0))

    def check_together(self) -> None:
        if self.position != "shuffle" and not (self.position.isdigit() and int(self.position) < self.candidates):
            raise ParameterError(f"llmrank: position must be 'shuffle' or in [0, {self.candidates - 1}], "
                                 f"got {self.position!r}")
        if self.parser == "sid" and self.rendering == "title":
            raise ParameterError("llmrank: parser 'sid' needs rendering 'sid' or 'title+sid'")

    @property
    def target_position(self) -> str | int:
        return "shuffle" if self.position == "shuffle" else int(self.position)


def _answer_prompt(kind: str, history, shown, domain: str) -> str:
    """The loglik variant: the same prompt, asking for the single best candidate as the answer."""
    item, _, _, verb, _ = DOMAINS[domain]
    base = build_prompt(kind, history, shown, domain=domain)
    return base.split("Please show me")[0] + f"The {item} I would like to {verb} next is:"


def rank_candidates(backend, lists: Sequence[CandidateList], renderer: ItemRenderer, settings: LLMRankSettings,
                    *, index=None, progress: bool = True) -> list[dict[str, Any]]:
    """Rank every candidate list; one record per list (scores, ranking, raw answers, parse facts)."""
    rng = np.random.default_rng(settings.seed)
    records = []
    for cands in tqdm(lists, desc="llmrank", unit="user", disable=not progress):
        n = len(cands.candidates)
        scores = np.zeros(n)
        parsed_any = np.zeros(n, dtype=bool)
        history = [renderer(i) for i in cands.history[-settings.max_history:]]
        answers, invalid, rounds_valid = [], 0, 0
        for round_ in range(settings.bootstrap):
            order = np.arange(n) if round_ == 0 else rng.permutation(n)
            shown_items = [cands.candidates[j] for j in order]
            shown = [renderer(i) for i in shown_items]
            if settings.scoring == "loglik":
                prompt = _answer_prompt(settings.prompt, history, shown, settings.domain)
                values = backend.score([prompt] * n, [" " + s for s in shown])
                for j, value in zip(order, values):
                    scores[j] += value
                parsed_any[:] = True
                rounds_valid += 1
                continue
            if settings.scoring == "constrained":
                if not hasattr(backend, "rank_options"):
                    raise ParameterError("llmrank: scoring 'constrained' needs a local model (--llm); a server "
                                         "cannot constrain its decoding (use scoring=loglik or generate)")
                prompt = _answer_prompt(settings.prompt, history, shown, settings.domain)
                beams = backend.rank_options(prompt, [" " + s for s in shown], num_beams=n)
                for r, (j, _) in enumerate(beams):
                    scores[order[j]] += n - r
                    parsed_any[order[j]] = True
                reached = {int(order[j]) for j, _ in beams}
                scores[[j for j in range(n) if j not in reached]] += UNPARSED
                rounds_valid += bool(beams)
                continue
            prompt = build_prompt(settings.prompt, history, shown, domain=settings.domain)
            attempts = 3 if settings.retry_if_missing_target else 1
            for _ in range(attempts):
                text = backend.generate([prompt], max_new_tokens=settings.max_new_tokens,
                                        temperature=settings.temperature, seed=settings.seed)[0]
                answers.append(text)
                if settings.parser == "sid":
                    result = parse("sid", text, index=index, candidates=shown_items)
                else:
                    result = parse("lcs", text, candidates=shown_items, titles={i: renderer(i) for i in shown_items})
                if not settings.retry_if_missing_target or cands.target in result.ranked:
                    break
            invalid += len(result.invalid)
            rounds_valid += bool(result.ranked)
            position = {item: j for j, item in enumerate(cands.candidates)}
            for r, item in enumerate(result.ranked):
                scores[position[item]] += n - r
                parsed_any[position[item]] = True
            scores[~np.isin(np.arange(n), [position[i] for i in result.ranked])] += UNPARSED
        ranked_idx = [j for j in np.argsort(-scores, kind="stable") if parsed_any[j]]
        records.append({
            "user_id": cands.user_id, "target": cands.target, "candidates": list(cands.candidates),
            "ranked": [cands.candidates[j] for j in ranked_idx], "answers": answers,
            "valid": rounds_valid > 0, "invalid_lines": invalid,
        })
    return records


def _popularity_percentile(dataset) -> dict[str, float]:
    counts = Counter(i for seq in leave_one_out(dataset).train_sequences for i in seq)
    items = list(dataset.items.item_ids)
    order = np.argsort([counts[i] for i in items], kind="stable")
    percentile = np.empty(len(items))
    percentile[order] = np.arange(len(items)) / max(len(items) - 1, 1)
    return dict(zip(items, percentile.tolist()))


def llmrank_evaluate(backend, dataset, settings: LLMRankSettings, *, index=None, users: int = 200,
                     split: str = "test", progress: bool = True) -> dict[str, Any]:
    """LLMRank on a seeded sample of ``users`` cases of ``split``; metrics, settings and per-user records.

    Metrics: NDCG / recall @{1,5,10,20} within the candidates (unparsed tied at the
    bottom), both HR@1 definitions with the valid ratio (parse rate), the
    popularity bias of the first-ranked item (its mean training-popularity
    percentile minus the candidates'), and seconds per user.
    """
    settings.validate()
    renderer = ItemRenderer(settings.rendering, dataset, index, on_missing=settings.on_missing)
    cases = sample_cases(leave_one_out(dataset).cases(split), users, settings.seed)
    full = {u: set(s) for u, s in zip(dataset.sequences.user_ids, dataset.sequences.items)}
    lists = sample_candidates(cases, dataset.items.item_ids, n=settings.candidates, seed=settings.seed,
                              position=settings.target_position,
                              full_histories={c.user_id: full[c.user_id] - {c.target} for c in cases})
    started = time.perf_counter()
    records = rank_candidates(backend, lists, renderer, settings, index=index, progress=progress)
    seconds = time.perf_counter() - started
    targets = [r["target"] for r in records]
    metrics = candidate_ndcg([r["ranked"] for r in records], [r["candidates"] for r in records], targets)
    metrics.update(hit_rate_at_1([r["ranked"][0] if r["ranked"] else None for r in records],
                                 [r["valid"] for r in records], targets))
    popularity = _popularity_percentile(dataset)
    firsts = [popularity[r["ranked"][0]] for r in records if r["ranked"]]
    shown = [popularity[i] for r in records for i in r["candidates"]]
    metrics["popularity_bias"] = float(np.mean(firsts) - np.mean(shown)) if firsts else float("nan")
    metrics["seconds_per_user"] = seconds / max(len(records), 1)
    return {
        "method": "llmrank" + ("" if settings.scoring == "generate" else f" ({settings.scoring} variant)"),
        "backend": getattr(backend, "name", type(backend).__name__),
        "settings": settings.to_dict(),
        "protocol": {"split": split, "users": len(records), "candidates": settings.candidates,
                     "untitled_items_shown_by_id": renderer.untitled,
                     "candidate_source": lists[0].source if lists else None, "parser": settings.parser,
                     "label_dependent_retry": settings.retry_if_missing_target},
        "metrics": metrics,
        "records": records,
    }
