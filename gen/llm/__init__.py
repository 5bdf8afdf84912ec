"""Shared parts of every LLM-based method: base model loading, code tokens, LoRA, and the
pieces the LLM rankers, tuners and agents share:

- :mod:`~semid.gen.llm.backend`: the :class:`LLMBackend` protocol (``generate``, ``score``)
  and :class:`LocalCausalLM`;
- :mod:`~semid.gen.llm.http_backend`: an OpenAI-compatible server, with retries, a
  concurrency limit and an on-disk response cache;
- :mod:`~semid.gen.llm.rendering`: items as titles, semantic IDs or both;
- :mod:`~semid.gen.llm.candidates`: candidate lists (random + target, or a retriever's top-n);
- :mod:`~semid.gen.llm.parsing`: the published output parsers, by name.

Candidate-list metrics (both HR@1 definitions, NDCG with ties, AUC) are in
:mod:`semid.evaluation.candidates`. Submodules import torch/transformers/peft;
this package file does not.
"""

__all__: list[str] = []
