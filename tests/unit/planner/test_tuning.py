"""PlannerTuning: every constant of the planner in one value, validated, addressable, and followed by the tick."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from inferencefleet.planner import tuning as tuning_module
from inferencefleet.planner.tuning import DEFAULT_TUNING, PlannerTuning

from .conftest import World, pool
from .test_controller import KEY, replicas_over

PLANNER = Path(tuning_module.__file__).parent


def test_values_are_addressed_by_dotted_paths():
    values = DEFAULT_TUNING.values()
    assert values["forecast.spike_max"] == 2.25
    changed = DEFAULT_TUNING.with_value("forecast.spike_max", 3.0)
    assert changed.forecast.spike_max == 3.0 and changed.forecast.level_tau_s == DEFAULT_TUNING.forecast.level_tau_s
    assert DEFAULT_TUNING.forecast.spike_max == 2.25  # a copy: the default is untouched
    with pytest.raises(ValueError, match=r"unknown planner tuning 'forecast.spike'; allowed: .*forecast.spike_max"):
        DEFAULT_TUNING.with_value("forecast.spike", 1.0)


@pytest.mark.parametrize(("path", "value", "message"), [
    ("forecast.level_tau_s", 0.0, r"forecast.level_tau_s must be > 0, got 0.0"),
    ("headroom.rise_per_s", -1.0, r"headroom.rise_per_s must be > 0, got -1.0"),
    ("correction.low", 1.2, r"correction.low \(1.2\) and correction.high \(3.0\) must enclose 1"),
    ("headroom.max", 0.5, r"headroom.max must be >= 1, got 0.5"),
    ("scale.burst_hold_max", math.nan, r"scale.burst_hold_max must be > 0, got nan"),
])
def test_a_bad_value_is_refused_naming_it(path, value, message):
    with pytest.raises(ValueError, match=message):
        DEFAULT_TUNING.with_value(path, value)


def test_every_value_is_read_by_the_planner():
    """A tuning value nothing reads would be swept by the sensitivity benchmark and show no effect."""
    sources = "\n".join(p.read_text() for p in PLANNER.glob("*.py") if p.name != "tuning.py")
    unread = [path for path in DEFAULT_TUNING.values() if not re.search(rf"\.{path.split('.')[1]}\b", sources)]
    assert unread == []


def test_the_tick_follows_its_scale_down_delay():
    def after_the_peak(tuning: PlannerTuning) -> list[int]:
        world = World([pool()], tuning=tuning)
        replicas_over(world, [200.0] * 20)
        return replicas_over(world, [20.0] * 130)

    quick = after_the_peak(DEFAULT_TUNING)
    slow = after_the_peak(DEFAULT_TUNING.with_value("scale.default_scale_down_delay_s", 900.0))
    assert quick[-1] == slow[-1] < quick[0]
    assert quick.index(quick[-1]) < slow.index(slow[-1])


def test_the_tick_follows_its_spike_bound():
    def spike(tuning: PlannerTuning) -> int:
        world = World([pool()], tuning=tuning)
        replicas_over(world, [20.0] * 20)
        return world.step({"p": 20.0}, waiting=3000.0).decision(KEY).desired_replicas

    assert spike(DEFAULT_TUNING.with_value("forecast.spike_max", 1.1)) < spike(DEFAULT_TUNING)
