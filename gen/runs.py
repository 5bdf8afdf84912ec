"""Run directories shared by every generator (TIGER, LC-Rec, CF baselines).

A run directory holds one training run::

    run.json            format, format_version, model_type, the index it was trained
                        on (path and fingerprint; none for CF models), the dataset
                        (absolute path and fingerprints of its items and training
                        split), the full config, library versions
    train_log.jsonl     one JSON object per event (epoch end, evaluation, stop,
                        resume), appended and flushed as training goes
    checkpoints/last/   newest state for ``--resume``: model weights, optimizer,
                        progress (``state.json``) and ``manifest.json`` with the
                        sha256 of every file
    checkpoints/best/   weights with the best validation score so far

Every checkpoint is written to a staging directory and renamed into place
(:func:`semid._io.atomic_directory`), so a run killed mid-write keeps its
previous checkpoint intact; a checkpoint whose files do not match their
manifest is reported as corrupted instead of being loaded.

This module knows nothing about torch: callers pass *writers*, functions that
write one file into the staging directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from semid._io import atomic_directory, read_versioned_json, sha256_file, write_json
from semid.errors import ArtifactError, DataError

__all__ = [
    "RUN_FORMAT",
    "RUN_FORMAT_VERSION",
    "RunDirectory",
    "create_run",
    "dataset_identity",
    "discard_on_failure",
    "open_or_create_run",
    "open_run",
]

logger = logging.getLogger(__name__)

RUN_FORMAT = "semid-run"
RUN_FORMAT_VERSION = 1
RUN_FILE = "run.json"
LOG_FILE = "train_log.jsonl"
MANIFEST_FILE = "manifest.json"
STATE_FILE = "state.json"

#: Writes one file (named by the key it is registered under) into a directory.
Writer = Callable[[Path], None]


class RunDirectory:
    """A run directory opened for reading or training (see the module docstring).

    Attributes:
        path: the directory.
        meta: the content of ``run.json``.
    """

    def __init__(self, path: Path, meta: dict[str, Any]):
        self.path = path
        self.meta = meta

    # -- metadata -----------------------------------------------------------------
    @property
    def model_type(self) -> str:
        return str(self.meta["model_type"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.meta.get("config", {}))

    @property
    def fingerprint(self) -> str | None:
        index = self.meta.get("index")
        return str(index["fingerprint"]) if index else None

    @property
    def index_path(self) -> str | None:
        index = self.meta.get("index")
        return str(index["path"]) if index else None

    @property
    def data_path(self) -> str | None:
        """Where the training dataset was (absolute for runs made by semid >= 0.2)."""
        identity = self.meta.get("dataset")
        return identity.get("path") if isinstance(identity, dict) else self.meta.get("data")

    def check_dataset(self, dataset, *, training: bool = False) -> None:
        """Refuse a dataset other than the one the run was trained on.

        The items must match always (a model's outputs are items); with
        ``training`` (resume) the training split must match too. Runs written
        before datasets were fingerprinted are not checked.

        Raises:
            DataError: naming the run, both datasets and what differs.
        """
        recorded = self.meta.get("dataset")
        if not isinstance(recorded, dict) or "items_fingerprint" not in recorded:
            return
        current = dataset_identity(dataset)
        keys = ("items_fingerprint", "train_fingerprint") if training else ("items_fingerprint",)
        for key in keys:
            if recorded[key] != current[key]:
                what = "items" if key == "items_fingerprint" else "training interactions"
                raise DataError(
                    f"{self.path} was trained on dataset {recorded.get('name')!r} ({recorded.get('n_items')} items, "
                    f"{recorded.get('n_users')} users), but dataset {current['name']!r} ({current['n_items']} items, "
                    f"{current['n_users']} users) has other {what}; use the dataset the run was trained on"
                )

    def check_fingerprint(self, fingerprint: str, *, index_path: str | os.PathLike[str] | None = None) -> None:
        """Refuse an index other than the one this run was trained on.

        Raises:
            ArtifactError: the fingerprints differ (the message names both indexes).
        """
        if fingerprint != self.fingerprint:
            where = f" ({index_path})" if index_path is not None else ""
            raise ArtifactError(
                f"{self.path} was trained on index {self.index_path} (fingerprint "
                f"{self.fingerprint[:12]}), but the given index{where} has fingerprint "
                f"{fingerprint[:12]}; use the same index or start a new run"
            )

    # -- training log ----------------------------------------------------------
    def log(self, event: str, **fields: Any) -> None:
        """Append ``{"event": event, "time": unix seconds, **fields}`` to the log."""
        record = {"event": event, "time": round(time.time(), 3), **fields}
        with open(self.path / LOG_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read_log(self) -> list[dict[str, Any]]:
        """Every record of the training log (a torn last line, from a kill, is skipped)."""
        path = self.path / LOG_FILE
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                logger.warning("%s: skipping a torn log line", path)
        return out

    # -- checkpoints -----------------------------------------------------------
    def remove_stale_staging(self) -> None:
        """Delete half-written checkpoint directories left by a killed process.

        :func:`semid._io.atomic_directory` stages ``checkpoints/NAME`` as
        ``checkpoints/.NAME.*``; a kill during the write leaves that behind.
        """
        import shutil

        folder = self.path / "checkpoints"
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.name.startswith(".") and entry.is_dir():
                    logger.info("removing half-written checkpoint %s", entry)
                    shutil.rmtree(entry, ignore_errors=True)

    def checkpoint_path(self, name: str) -> Path:
        return self.path / "checkpoints" / name

    def has_checkpoint(self, name: str) -> bool:
        return (self.checkpoint_path(name) / MANIFEST_FILE).exists()

    def has_any_checkpoint(self) -> bool:
        folder = self.path / "checkpoints"
        return folder.is_dir() and any((entry / MANIFEST_FILE).exists() for entry in folder.iterdir())

    def save_checkpoint(self, name: str, writers: Mapping[str, Writer], state: Mapping[str, Any]) -> Path:
        """Write checkpoint ``name`` atomically: one file per writer plus ``state.json``.

        ``writers[file_name](path)`` must create ``path``. The previous checkpoint
        of that name is replaced only once every file is written.
        """
        destination = self.checkpoint_path(name)
        with atomic_directory(destination, overwrite=True) as staging:
            for file_name, writer in writers.items():
                writer(staging / file_name)
                if not (staging / file_name).exists():
                    raise ArtifactError(f"checkpoint writer for {file_name!r} created no file")
            write_json(staging / STATE_FILE, dict(state))
            files = sorted([*writers, STATE_FILE])
            write_json(staging / MANIFEST_FILE, {"files": {f: sha256_file(staging / f) for f in files}})
        return destination

    def load_checkpoint(self, name: str) -> tuple[Path, dict[str, Any]]:
        """``(directory, state)`` of checkpoint ``name`` after verifying every checksum.

        Raises:
            ArtifactError: the checkpoint is missing, a file is missing, or a file's
                sha256 differs from the manifest (corrupted).
        """
        directory = self.checkpoint_path(name)
        manifest_path = directory / MANIFEST_FILE
        if not manifest_path.exists():
            raise ArtifactError(f"{self.path} has no {name!r} checkpoint ({manifest_path} is missing)")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            files = dict(manifest["files"])
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{manifest_path} is corrupted ({exc})") from None
        for file_name, digest in files.items():
            file_path = directory / file_name
            if not file_path.exists():
                raise ArtifactError(f"checkpoint file {file_path} is missing")
            if sha256_file(file_path) != digest:
                raise ArtifactError(
                    f"checkpoint file {file_path} is corrupted: its sha256 does not match "
                    f"{MANIFEST_FILE}; delete the checkpoint to retrain from the previous one"
                )
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        return directory, state


def _read_meta(path: Path) -> dict[str, Any]:
    meta_path = path / RUN_FILE
    meta = read_versioned_json(meta_path, format=RUN_FORMAT, max_version=RUN_FORMAT_VERSION, what="run")
    for key in ("model_type",):
        if key not in meta:
            raise ArtifactError(f"{meta_path}: field {key!r} is missing")
    return meta


def open_run(path: str | os.PathLike[str]) -> RunDirectory:
    """Open an existing run directory (checks its format)."""
    path = Path(path)
    return RunDirectory(path, _read_meta(path))


def dataset_identity(dataset) -> dict[str, Any]:
    """Name, absolute path, counts and fingerprints of a dataset and its leave-one-out training split."""
    import hashlib

    from semid.evaluation.split import leave_one_out

    items = hashlib.sha256("\n".join(dataset.items.item_ids).encode("utf-8")).hexdigest()
    split = leave_one_out(dataset)
    digest = hashlib.sha256()
    for user, sequence in zip(split.train_users, split.train_sequences):
        digest.update(("\t".join([user, *sequence]) + "\n").encode("utf-8"))
    path = getattr(dataset, "path", None)
    return {
        "name": dataset.name,
        "path": str(Path(path).resolve()) if path else None,
        "n_items": len(dataset.items.item_ids),
        "n_users": len(dataset.sequences.user_ids),
        "items_fingerprint": items,
        "train_fingerprint": digest.hexdigest(),
    }


def create_run(
    path: str | os.PathLike[str],
    *,
    model_type: str,
    config: Mapping[str, Any],
    index_path: str | os.PathLike[str] | None = None,
    fingerprint: str | None = None,
    data: str | None = None,
    dataset=None,
    resume: bool = False,
    overwrite: bool = False,
    resumable_keys: frozenset[str] = frozenset(),
    defaults: Mapping[str, Any] | None = None,
) -> RunDirectory:
    """Create a run directory, or reopen it with ``resume=True``.

    On resume the stored model type, index fingerprint, dataset and config must
    match (keys in ``resumable_keys``, such as a time budget, may change). A
    setting the stored config lacks (added in a later semid version) counts as
    its value in ``defaults``. ``--overwrite`` replaces only a semid run.

    Raises:
        ArtifactError: ``path`` exists without ``resume``/``overwrite``, is not a
            run and ``overwrite`` is asked; or, on resume, a different model type,
            index or config. DataError: on resume, another dataset.
    """
    from semid import __version__

    path = Path(path)
    config = dict(config)
    if path.exists() and resume:
        run = open_run(path)
        if run.model_type != model_type:
            raise ArtifactError(f"{path} is a {run.model_type!r} run, not {model_type!r}")
        if fingerprint is not None:
            run.check_fingerprint(fingerprint, index_path=index_path)
        if dataset is not None:
            run.check_dataset(dataset, training=True)
        stored = {**dict(defaults or {}), **run.config}
        old = {k: v for k, v in stored.items() if k not in resumable_keys}
        new = {k: v for k, v in config.items() if k not in resumable_keys}
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed:
            key = changed[0]
            raise ArtifactError(
                f"cannot resume {path}: setting {key!r} was {old.get(key)!r}, now {new.get(key)!r}; "
                "use the original settings or start a new run"
            )
        run.meta["config"] = config
        write_json(path / RUN_FILE, run.meta)
        run.remove_stale_staging()
        if not run.has_checkpoint("last"):
            logger.warning("%s has no checkpoint yet (stopped before its first one); training starts from the "
                           "beginning", path)
        return run
    if path.exists() and not overwrite:
        raise ArtifactError(f"{path} already exists; pass --resume to continue it or --overwrite to replace it")
    if path.exists():
        _check_replaceable(path, model_type)
    import platform

    import numpy as np

    versions = {"semid": __version__, "numpy": np.__version__, "python": platform.python_version()}
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - every trainer needs torch
        pass
    meta = {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "model_type": model_type,
        "index": (
            {"path": str(Path(index_path).resolve()) if index_path != "<in memory>" else index_path,
             "fingerprint": fingerprint}
            if fingerprint is not None else None
        ),
        "data": str(Path(dataset.path).resolve()) if dataset is not None and dataset.path else (data or None),
        "dataset": dataset_identity(dataset) if dataset is not None else None,
        "config": config,
        "versions": versions,
    }
    with atomic_directory(path, overwrite=overwrite, marker=RUN_FILE) as staging:
        write_json(staging / RUN_FILE, meta)
        (staging / "checkpoints").mkdir()
    return RunDirectory(path, meta)


def _check_replaceable(path: Path, model_type: str) -> None:
    """``--overwrite`` deletes only a semid run of the same model type."""
    if not path.is_dir():
        raise ArtifactError(f"{path} exists and is not a directory; choose another output path")
    try:
        existing = open_run(path)
    except ArtifactError:
        raise ArtifactError(
            f"{path} is not a semid run (no valid run.json); --overwrite only replaces a run, "
            "so semid leaves it alone: choose another output path or delete it yourself"
        ) from None
    if existing.model_type != model_type:
        raise ArtifactError(
            f"{path} is a {existing.model_type!r} run; --overwrite only replaces a {model_type!r} run "
            "(choose another output path)"
        )


def open_or_create_run(path, dist, **kwargs: Any) -> RunDirectory:
    """:func:`create_run` on rank 0, then :func:`open_run` on the other ranks (after a barrier)."""
    run = create_run(path, **kwargs) if dist.is_main else None
    dist.barrier()
    return run if run is not None else open_run(path)


@contextlib.contextmanager
def discard_on_failure(run: RunDirectory, dist) -> Iterator[None]:
    """Delete a run that has no checkpoint yet when its set-up fails, so a retry starts clean.

    A failed start (a base model that does not load, a bad setting found late)
    otherwise leaves a ``run.json`` that neither a retry (exists) nor
    ``--resume`` (nothing to resume) can use.
    """
    try:
        yield
    except BaseException:
        if dist.is_main and not run.has_any_checkpoint() and not _has_training_events(run):
            import shutil

            shutil.rmtree(run.path, ignore_errors=True)
            logger.info("removed %s: training failed before its first checkpoint", run.path)
        raise


def _has_training_events(run: RunDirectory) -> bool:
    return any(record.get("event") in {"epoch", "valid", "progress"} for record in run.read_log())
