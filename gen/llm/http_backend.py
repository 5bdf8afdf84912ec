"""An OpenAI-compatible server as an :class:`semid.gen.llm.backend.LLMBackend` (vLLM, llama.cpp, hosted APIs).

- ``generate``: ``POST {base_url}/chat/completions`` (one user message per prompt);
- ``score``: ``POST {base_url}/completions`` with ``echo=true, logprobs=1, max_tokens=0``
  over prompt + continuation, summing the log-probabilities of the tokens that
  fall inside the continuation (servers that do not offer echoed logprobs give a
  clear error, and the methods fall back to generation).

Requests run ``concurrency`` at a time, with a timeout, and are retried with
exponential backoff on connection errors, 429 and 5xx. Every answer is cached on
disk under ``sha256(model, endpoint, request body)``, so a rerun is reproducible
and free, and a failed run keeps what it already paid for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from semid.errors import ArtifactError, ParameterError

__all__ = ["OpenAICompatibleBackend", "ServerError"]

logger = logging.getLogger(__name__)

_RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}


class ServerError(ArtifactError):
    """The server could not be reached, or kept failing, within the retry budget."""


class OpenAICompatibleBackend:
    """Chat / completions endpoints of an OpenAI-compatible server.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the server knows.
        api_key: sent as a bearer token (default: ``$OPENAI_API_KEY`` if set).
        timeout: seconds per request.
        retries: extra attempts after the first, with ``backoff * 2**attempt`` seconds between.
        concurrency: requests in flight at once.
        cache_dir: on-disk response cache (``None``: no cache).
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 60.0,
                 retries: int = 3, backoff: float = 1.0, concurrency: int = 4, cache_dir: str | os.PathLike | None = None):
        if not base_url.startswith(("http://", "https://")):
            raise ParameterError(f"base_url must start with http:// or https://, got {base_url!r}")
        if concurrency < 1 or retries < 0 or timeout <= 0:
            raise ParameterError("concurrency must be >= 1, retries >= 0 and timeout > 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"{model} @ {self.base_url}"
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout, self.retries, self.backoff, self.concurrency = timeout, retries, backoff, concurrency
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.requests_sent = 0  # network requests actually made (cache hits excluded)

    # -- transport ------------------------------------------------------------------
    def _cache_path(self, endpoint: str, body: dict[str, Any]) -> Path | None:
        if self.cache_dir is None:
            return None
        key = json.dumps({"model": self.model, "endpoint": endpoint, "body": body}, sort_keys=True)
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.json"

    def _post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        cached = self._cache_path(endpoint, body)
        if cached is not None and cached.exists():
            return json.loads(cached.read_text(encoding="utf-8"))
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = f"{self.base_url}/{endpoint}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                self.requests_sent += 1
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    answer = json.loads(response.read().decode("utf-8"))
                break
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", errors="replace")[:200]
                last = f"HTTP {exc.code}: {detail}"
                if exc.code not in _RETRYABLE:
                    raise ServerError(f"{url} refused the request ({last})") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
                last = str(getattr(exc, "reason", exc))
            logger.warning("%s: attempt %d of %d failed (%s)", url, attempt + 1, self.retries + 1, last)
        else:
            raise ServerError(
                f"{url} did not answer after {self.retries + 1} attempts (last error: {last}); "
                "is the server running? Answers received so far are kept in the cache"
            )
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(answer), encoding="utf-8")
            os.replace(tmp, cached)
        return answer

    def _map(self, function, items: Sequence[Any]) -> list[Any]:
        if self.concurrency == 1 or len(items) <= 1:
            return [function(x) for x in items]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(function, items))

    # -- LLMBackend -------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 seed: int = 0) -> list[str]:
        if max_new_tokens < 1:
            raise ParameterError(f"max_new_tokens must be >= 1, got {max_new_tokens}")

        def one(prompt: str) -> str:
            body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": max_new_tokens, "temperature": temperature, "seed": seed}
            answer = self._post("chat/completions", body)
            try:
                return str(answer["choices"][0]["message"]["content"] or "").strip()
            except (KeyError, IndexError, TypeError):
                raise ServerError(f"{self.base_url}: unexpected chat answer {str(answer)[:200]}") from None

        return self._map(one, list(prompts))

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        if len(prompts) != len(continuations):
            raise ParameterError(f"{len(prompts)} prompts for {len(continuations)} continuations")

        def one(pair: tuple[str, str]) -> float:
            prompt, continuation = pair
            body = {"model": self.model, "prompt": prompt + continuation, "max_tokens": 0, "echo": True,
                    "logprobs": 1, "temperature": 0.0}
            answer = self._post("completions", body)
            try:
                logprobs = answer["choices"][0]["logprobs"]
                offsets, values = logprobs["text_offset"], logprobs["token_logprobs"]
            except (KeyError, IndexError, TypeError):
                raise ServerError(
                    f"{self.base_url}: the completions endpoint gave no echoed logprobs; this server cannot "
                    "score continuations (use generation-based methods with it)"
                ) from None
            start = len(prompt)
            return float(sum(v for o, v in zip(offsets, values) if o >= start and v is not None))

        return self._map(one, list(zip(prompts, continuations)))
