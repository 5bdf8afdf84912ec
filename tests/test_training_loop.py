"""The shared training loop (semid.gen.training): budget, stop reasons, checkpoints, resume.

The model here is a one-parameter fake with a scripted validation score: these
tests are about the loop's plumbing, which every real trainer (TIGER, LC-Rec,
SASRec, LightGCN) runs; each of those has its own tests on real data.
"""

from __future__ import annotations

import json
import time

import pytest
import torch

from semid.errors import ArtifactError, ParameterError
from semid.gen.runs import create_run, discard_on_failure, open_run
from semid.gen.training import STOP_REASONS, Budget, Distributed, LoopSettings, LoopState, train_loop


class Fake:
    """Counts steps; validation returns the next scripted score; optional sleeps and a Ctrl-C at a step."""

    name = "fake"

    def __init__(self, scores=(), *, batches=4, step_seconds=0.0, validation_seconds=0.0, interrupt_at=None):
        self.weight = torch.zeros(1)
        self.scores = list(scores)
        self.batches, self.step_seconds, self.validation_seconds = batches, step_seconds, validation_seconds
        self.interrupt_at = interrupt_at
        self.steps = 0
        self.seen: list[tuple[int, int]] = []
        self.validations = 0

    def epoch_batches(self, epoch):
        return [(epoch, b) for b in range(self.batches)]

    def train_step(self, batch):
        if self.interrupt_at is not None and self.steps == self.interrupt_at:
            raise KeyboardInterrupt
        time.sleep(self.step_seconds)
        self.steps += 1
        self.weight += 1
        self.seen.append(batch)
        return 1.0 / self.steps, 10

    def validate(self):
        time.sleep(self.validation_seconds)
        self.validations += 1
        return {"ndcg@10": self.scores.pop(0) if self.scores else 0.0, "users": 3}

    def weight_writers(self):
        value = float(self.weight)
        return {"w.json": lambda path: path.write_text(json.dumps(value))}

    def training_writers(self):
        steps = self.steps
        return {"t.json": lambda path: path.write_text(json.dumps(steps))}

    def restore(self, directory):
        self.weight = torch.tensor([json.loads((directory / "w.json").read_text())])
        self.steps = json.loads((directory / "t.json").read_text())


def _run(tmp_path, name="run", **kwargs):
    return create_run(tmp_path / name, model_type="fake", config={"x": 1}, **kwargs)


def _events(run):
    return [r["event"] for r in run.read_log()]


def test_stop_vocabulary_is_closed():
    assert STOP_REASONS == ("budget", "interrupted", "max_epochs", "patience")


def test_max_epochs_validates_every_epoch_and_keeps_best_and_last(tmp_path):
    run = _run(tmp_path)
    fake = Fake(scores=[0.1, 0.3, 0.2])
    state = train_loop(fake, run, LoopSettings(max_epochs=3), budget=Budget(None), progress=False)
    assert state.stopped == "max_epochs" and state.epoch == 3 and state.step == 12 and state.targets_seen == 120
    assert state.best_score == 0.3 and state.best_epoch == 2 and state.best_step == 8
    assert _events(run) == ["epoch", "valid", "epoch", "valid", "epoch", "valid", "stop"]
    best, _ = run.load_checkpoint("best")
    assert json.loads((best / "w.json").read_text()) == 8.0  # the weights of epoch 2
    last, stored = run.load_checkpoint("last")
    assert json.loads((last / "w.json").read_text()) == 12.0 and (last / "t.json").exists()
    assert not (best / "t.json").exists()  # optimizer state only in last
    assert LoopState.from_dict(stored["loop"]) == state


def test_patience_stops_and_a_resume_has_nothing_left_to_do(tmp_path):
    run = _run(tmp_path)
    settings = LoopSettings(max_epochs=50, patience=2)
    state = train_loop(Fake(scores=[0.5, 0.4, 0.3]), run, settings, budget=Budget(None), progress=False)
    assert state.stopped == "patience" and state.epoch == 3 and state.best_epoch == 1
    again = Fake()
    state = train_loop(again, open_run(run.path), settings, budget=Budget(None), progress=False)
    assert state.epoch == 3 and again.steps == 12 and again.validations == 0  # restored, not retrained


def test_resume_continues_mid_epoch_on_the_same_batches(tmp_path):
    straight = Fake(batches=5)
    train_loop(straight, _run(tmp_path, "a"), LoopSettings(max_epochs=2, eval_every=0), budget=Budget(None),
               progress=False)
    run = _run(tmp_path, "b")
    first = Fake(batches=5)
    state = train_loop(first, run, LoopSettings(max_epochs=2, eval_every=0, stop_after_steps=7),
                       budget=Budget(None), progress=False)
    assert state.stopped == "budget" and (state.epoch, state.batch, state.step) == (1, 2, 7)
    second = Fake(batches=5)
    state = train_loop(second, run, LoopSettings(max_epochs=2, eval_every=0), budget=Budget(None), progress=False)
    assert state.stopped == "max_epochs" and state.step == 10
    assert first.seen + second.seen == straight.seen
    assert "resume" in _events(run)


def test_budget_counts_validation_and_keeps_room_for_the_final_one(tmp_path):
    """Wall time of the invocation, validation included: the loop stops early enough to validate once more."""
    run = _run(tmp_path)
    fake = Fake(batches=4, step_seconds=0.05, validation_seconds=0.4)
    started = time.monotonic()
    state = train_loop(fake, run, LoopSettings(max_epochs=100), budget=Budget(1.5 / 60), progress=False)
    wall = time.monotonic() - started
    assert state.stopped == "budget"
    assert fake.validations >= 2  # one per finished epoch, then one at the stop
    assert wall < 1.5 + 0.4  # overrun at most a fraction of one step and a checkpoint, never a whole validation


def test_a_budget_that_ends_before_any_validation_keeps_the_final_weights_as_best(tmp_path):
    run = _run(tmp_path)
    fake = Fake(batches=1000, step_seconds=0.01, validation_seconds=5.0)
    state = train_loop(fake, run, LoopSettings(max_epochs=1), budget=Budget(0.3 / 60), progress=False)
    assert state.stopped == "budget" and fake.validations == 0 and state.best_score is None
    best, _ = run.load_checkpoint("best")
    assert json.loads((best / "w.json").read_text()) == float(fake.steps)


def test_ctrl_c_writes_last_records_interrupted_and_resumes(tmp_path):
    run = _run(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train_loop(Fake(batches=4, interrupt_at=6), run, LoopSettings(max_epochs=3, eval_every=0),
                   budget=Budget(None), progress=False)
    _, stored = run.load_checkpoint("last")
    assert stored["loop"]["stopped"] == "interrupted" and stored["loop"]["step"] == 6
    assert run.read_log()[-1] == {**run.read_log()[-1], "event": "stop", "reason": "interrupted"}
    resumed = Fake(batches=4)
    state = train_loop(resumed, open_run(run.path), LoopSettings(max_epochs=3, eval_every=0), budget=Budget(None),
                       progress=False)
    assert state.stopped == "max_epochs" and state.step == 12 and len(resumed.seen) == 6


def test_settings_and_budget_are_checked():
    with pytest.raises(ParameterError, match="max_epochs"):
        LoopSettings(max_epochs=0).validate()
    with pytest.raises(ParameterError, match="eval_every"):
        LoopSettings(max_epochs=1, eval_every=-1).validate()
    with pytest.raises(ParameterError, match="budget"):
        Budget(0)
    assert Distributed().any(True, False) == (True, False) and Distributed().from_main(1.5) == (1.5,)


def test_a_failed_start_leaves_nothing_behind_so_a_retry_works(tmp_path):
    run = _run(tmp_path)
    with pytest.raises(RuntimeError, match="base model"), discard_on_failure(run, Distributed()):
        raise RuntimeError("the base model did not load")
    assert not run.path.exists()
    _run(tmp_path)  # the same path is free again


def test_overwrite_replaces_only_a_run_of_the_same_kind(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    with pytest.raises(ArtifactError, match="not a semid run"):
        create_run(folder, model_type="fake", config={}, overwrite=True)
    assert (folder / "thesis.tex").read_text() == "precious"
    _run(tmp_path, "other")
    with pytest.raises(ArtifactError, match="'fake' run"):
        create_run(tmp_path / "other", model_type="tiger", config={}, overwrite=True)


def test_epoch_throughput_counts_the_whole_epoch_across_mid_epoch_checkpoints(tmp_path):
    """A checkpoint inside an epoch must not restart the clock of the epoch's targets/s."""
    run = _run(tmp_path)
    fake = Fake(batches=5, step_seconds=0.02)  # 10 targets per step: at most 500 targets/s
    train_loop(fake, run, LoopSettings(max_epochs=1, eval_every=0, checkpoint_steps=1), budget=Budget(None),
               progress=False)
    epoch = next(r for r in run.read_log() if r["event"] == "epoch")
    assert epoch["targets"] == 50 and epoch["targets_per_second"] <= 500
