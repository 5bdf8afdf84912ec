"""Loading a trained LC-Rec run as a recommender: :func:`load_lcrec_run`.

The run's ``model/`` folder is in the usual transformers/peft layout, so it also
loads without semid::

    tok = AutoTokenizer.from_pretrained("RUN/model/tokenizer")
    base = AutoModelForCausalLM.from_pretrained(BASE)          # lcrec.json: base_model
    base.resize_token_embeddings(len(tok))
    model = PeftModel.from_pretrained(base, "RUN/model/adapter")

(the adapter holds the trained rows of the code tokens, so the values of the
resized rows do not matter).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from semid._io import read_versioned_json
from semid.errors import ArtifactError

from .config import LCRecConfig
from .encoding import PromptFormatter
from .recommender import LCRecRecommender
from .templates import load_prompts

__all__ = ["load_lcrec_model", "load_lcrec_run", "load_recommender"]

logger = logging.getLogger(__name__)


def _read_model_meta(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "lcrec.json"
    if not path.exists():
        raise ArtifactError(
            f"{model_dir.parent} has no trained LC-Rec model ({path} is missing); training did not finish "
            "or was interrupted: continue it with `semid train lcrec ... --resume`"
        )
    return read_versioned_json(path, format="semid-lcrec-model", max_version=1, what="LC-Rec model")


def load_lcrec_model(path: str | os.PathLike[str], *, index=None, merge: bool = True):
    """``(model, tokenizer, index, token_map, meta, config)`` of a trained run.

    Args:
        index: an index directory or fitted tokenizer to use instead of the run's
            copy; it must have the fingerprint the run was trained on.
        merge: merge a LoRA adapter into the base weights (``False`` keeps the
            ``PeftModel``).

    Raises:
        ArtifactError: not an LC-Rec run, an unfinished run, or another index.
    """
    import torch
    from transformers import AutoTokenizer

    from semid.gen.llm.base_model import load_causal_lm
    from semid.gen.runs import open_run
    from semid.registry import load as load_index

    run = open_run(path)
    if run.model_type != "lcrec":
        raise ArtifactError(f"{path} is a {run.model_type!r} run, not an LC-Rec run")
    model_dir = Path(path) / "model"
    meta = _read_model_meta(model_dir)
    config = LCRecConfig.from_dict(run.config)
    if index is None:
        index = load_index(model_dir / "index")
        index_where = model_dir / "index"
    elif isinstance(index, (str, os.PathLike)):
        index_where = index
        index = load_index(index)
    else:
        index_where = "<in memory>"
    run.check_fingerprint(index.fingerprint, index_path=index_where)

    tokenizer = AutoTokenizer.from_pretrained(model_dir / "tokenizer")
    if meta["method"] == "full":
        model, _ = load_causal_lm(model_dir / "full", dtype=config.dtype)
    else:
        from peft import PeftModel

        base, _ = load_causal_lm(config.base_model, dtype=config.dtype)
        base.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        model = PeftModel.from_pretrained(base, model_dir / "adapter")
        if merge:
            # Inference only: fold LoRA and the code-token rows into the weights, so
            # no adapter arithmetic runs at every decoding step.
            model = model.merge_and_unload()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    token_map = torch.tensor(meta["code_token_ids"], dtype=torch.long)
    if len(token_map) != index.vocab.n_tokens:
        raise ArtifactError(f"{model_dir}/lcrec.json maps {len(token_map)} code tokens; the index has "
                            f"{index.vocab.n_tokens}")
    model.eval()
    return model, tokenizer, index, token_map, meta, config


def load_lcrec_run(
    path: str | os.PathLike[str],
    *,
    index=None,
    decoding: str = "beam",
    alpha: float = 0.0,
    assistant=None,
    num_beams: int | None = None,
    batch_size: int | None = None,
    engine: str = "stepper",
) -> LCRecRecommender:
    """A recommender (``recommend(histories, k, ...)``) from an LC-Rec run directory.

    Args:
        index: override of the run's index copy (same fingerprint required).
        decoding: ``"beam"`` (generate + trie processor) or ``"d3"``.
        alpha, assistant: D3's assistant weight and item scorer
            (e.g. :class:`semid.gen.decoding.assistant.PopularityScorer`).
        num_beams, batch_size: override the run's inference settings.
        engine: ``"stepper"`` or ``"generate"`` (see :mod:`semid.gen.lcrec.recommender`).
    """
    model, tokenizer, index, token_map, meta, config = load_lcrec_model(path, index=index)
    prompts = load_prompts(config.prompts)
    if prompts.sha256 != meta["prompts"]["sha256"]:
        logger.warning("prompt set %s changed since training (sha256 differs); recommendations may suffer",
                       config.prompts)
    formatter = PromptFormatter(tokenizer, prompts)
    return LCRecRecommender(
        model, tokenizer, index, token_map, formatter, prompts.templates("seqrec")[0],
        max_length=config.max_length, max_history=config.max_history,
        num_beams=num_beams or config.num_beams, batch_size=batch_size or config.eval_batch_size,
        decoding=decoding, alpha=alpha, assistant=assistant, engine=engine,
    )


def load_recommender(run_path, *, dataset=None, index=None, checkpoint=None, decoding=None, device="cpu", **_):
    """Entry used by ``semid evaluate`` / ``semid recommend`` (``semid.gen.<model_type>:load_recommender``).

    Args:
        decoding: ``{"num_beams", "decoding", "alpha", "assistant"}`` from the CLI;
            the assistant may be ``"popularity"`` (training-split popularity, needs
            ``dataset``) or an :class:`ItemScorer` object.
        checkpoint: ignored; an LC-Rec run has one final model.
    """
    from semid.errors import ParameterError

    options = dict(decoding or {})
    assistant = options.get("assistant")
    recommender = load_lcrec_run(
        run_path, index=index, decoding=options.get("decoding", "beam"), alpha=float(options.get("alpha") or 0.0),
        num_beams=options.get("num_beams"),
    )
    if isinstance(assistant, str):
        if assistant != "popularity":
            raise ParameterError(
                f"LC-Rec runs take --assistant popularity (or an ItemScorer in Python), got {assistant!r}"
            )
        if dataset is None:
            raise ParameterError("--assistant popularity needs --data (its training split gives the counts)")
        from semid.evaluation import leave_one_out
        from semid.gen.decoding.assistant import PopularityScorer

        assistant = PopularityScorer(recommender.item_ids, leave_one_out(dataset).train_sequences)
    recommender.assistant = assistant
    recommender.model.to(device)
    return recommender
