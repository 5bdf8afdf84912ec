"""Versioned prompt templates for LC-Rec, read from JSON data files.

Templates live in ``semid/gen/prompts/<name>.json`` (package data), not in code:
a run records the file's ``version`` and sha256, so a changed wording is visible.
See ``lcrec_v1.json`` for the placeholders each task fills.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from semid.errors import ArtifactError, ParameterError

__all__ = ["DEFAULT_PROMPTS", "PromptSet", "load_prompts"]

DEFAULT_PROMPTS = "lcrec_v1"
_FORMAT = "semid-prompts"


@dataclass(frozen=True)
class PromptSet:
    """Templates of every task, plus the plain (no chat template) prompt format.

    Attributes:
        version: e.g. ``"lcrec-v1"``; recorded in runs.
        sha256: digest of the JSON file's bytes.
        tasks: task name -> its entry (``templates``, ``response``, ...).
        plain_prompt_format: wraps an instruction for models without a chat template.
    """

    version: str
    sha256: str
    tasks: dict[str, dict[str, Any]]
    plain_prompt_format: str

    def templates(self, task: str) -> list[str]:
        return list(self.tasks[task]["templates"])

    def response(self, task: str) -> str:
        return str(self.tasks[task]["response"])


def load_prompts(name_or_path: str | os.PathLike[str] = DEFAULT_PROMPTS) -> PromptSet:
    """Load a packaged prompt set by name (``"lcrec_v1"``) or a JSON file by path.

    Raises:
        ArtifactError: the file is missing, not JSON, or not a semid prompt file.
    """
    text = str(name_or_path)
    if text.endswith(".json") or os.sep in text:
        path = Path(text)
        if not path.exists():
            raise ArtifactError(f"prompt file not found: {path}")
        raw = path.read_bytes()
        where = str(path)
    else:
        resource = resources.files("semid.gen").joinpath("prompts", f"{text}.json")
        if not resource.is_file():
            raise ParameterError(f"unknown prompt set {text!r}; packaged sets: {DEFAULT_PROMPTS}")
        raw = resource.read_bytes()
        where = f"semid/gen/prompts/{text}.json"
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ArtifactError(f"{where}: field 'format' must be {_FORMAT!r}")
    tasks = data.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise ArtifactError(f"{where}: field 'tasks' must be a non-empty object")
    for task, entry in tasks.items():
        templates = entry.get("templates") if isinstance(entry, dict) else None
        if not templates or not all(isinstance(t, str) for t in templates) or "response" not in entry:
            raise ArtifactError(f"{where}: task {task!r} needs 'templates' (list of strings) and 'response'")
    return PromptSet(
        version=str(data.get("version", text)),
        sha256=hashlib.sha256(raw).hexdigest(),
        tasks=tasks,
        plain_prompt_format=str(data.get("plain_prompt_format", "{instruction}\n")),
    )
