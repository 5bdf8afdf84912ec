"""The shared learning-rate schedules against hand-computed values."""

import logging
import math

import pytest

from semid.errors import ParameterError
from semid.gen.tiger.config import TigerConfig
from semid.gen.tiger.train import lr_factor
from semid.gen.training import Schedule


def test_warm_up_then_each_shape():
    assert [Schedule("constant", warmup_steps=4)(s) for s in (0, 3, 100)] == pytest.approx([0.25, 1.0, 1.0])
    linear = Schedule("linear", total_steps=14, warmup_steps=4)
    assert [linear(s) for s in (3, 4, 9, 14, 20)] == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0])
    cosine = Schedule("cosine", total_steps=12, warmup_steps=2)
    assert cosine(7) == pytest.approx(0.5) and cosine(2) == 1.0 and cosine(12) == pytest.approx(0.0)
    assert cosine(4.5) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    inverse = Schedule("inverse_sqrt", decay_after=100)
    assert inverse(99) == 1.0 and inverse(399) == pytest.approx(0.5)


def test_wsd_is_constant_until_the_cool_down_then_linear():
    wsd = Schedule("wsd", total_steps=100, warmup_steps=10, cooldown=0.25)
    assert [wsd(s) for s in (0, 9, 50, 74)] == pytest.approx([0.1, 1.0, 1.0, 1.0])
    assert [wsd(s) for s in (75, 80, 100)] == pytest.approx([1.0, 0.8, 0.0])


def test_a_floor_bounds_warm_up_and_decay():
    llara = Schedule("cosine", total_steps=100, warmup_steps=5, floor=0.01)
    assert llara(0) == pytest.approx(0.01 + 0.99 / 5) and llara(100) == pytest.approx(0.01)


@pytest.mark.parametrize("shape", ["linear", "cosine", "wsd"])
def test_a_decay_without_a_horizon_is_refused(shape):
    with pytest.raises(ParameterError, match="needs total_steps"):
        Schedule(shape)


def test_bad_shape_floor_and_cooldown_are_refused():
    with pytest.raises(ParameterError, match="unknown shape 'step'"):
        Schedule("step")
    with pytest.raises(ParameterError, match="floor"):
        Schedule(floor=1.0)
    with pytest.raises(ParameterError, match="cooldown"):
        Schedule("wsd", total_steps=10, cooldown=0.0)


def test_tiger_decays_to_the_end_of_max_epochs():
    config = TigerConfig(schedule="wsd", cooldown=0.5, warmup_steps=0)
    factor = lr_factor(config, total_steps=40)
    assert factor(19) == 1.0 and factor(30) == pytest.approx(0.5)
    assert TigerConfig(schedule="cosine").to_dict()["schedule"] == "cosine"


def test_a_warm_up_as_long_as_the_run_is_reported(caplog):
    with caplog.at_level(logging.WARNING, logger="semid.gen.training.schedules"):
        Schedule("linear", total_steps=6, warmup_steps=20)
    assert "peaks at 30% of the set value" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="semid.gen.training.schedules"):
        Schedule("linear", total_steps=60, warmup_steps=20)
    assert caplog.text == ""
