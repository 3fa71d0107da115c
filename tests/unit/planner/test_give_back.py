"""A load-tested pool gives back replicas still starting once the demand no longer needs them; ready ones, and
every replica of a pool without a load test, keep the scale-down delay."""

from __future__ import annotations

import itertools
import re

import pytest

from inferencefleet.planner.tuning import DEFAULT_TUNING

from .conftest import LOAD_TEST

KEY = ("ns", "p")
TESTED = {"capacity": {"loadTest": LOAD_TEST}}
POOLS = {"without a load test": {}, "with a load test": TESTED}


def rise_then_fall(world, peak: float, ticks: int, waiting: float = 0.0, base: float = 30.0, after: int = 8) -> list:
    """Decisions of a pool steady at ``base`` req/s, then ``ticks`` 15 s ticks at ``peak``, then ``after`` at
    ``base`` again."""
    for _ in range(20):
        world.step({"p": base})
    return [world.step({"p": rate}, waiting=waiting).decision(KEY) for rate in [peak] * ticks + [base] * after]


def given_back(decisions: list, ticks: int) -> list[tuple[float, int, str]]:
    """(seconds since the demand fell, window in the reason, reason) of each give-back."""
    found = []
    for i, d in enumerate(decisions):
        record = d.records[0]
        if record.action == "ScaleDown":
            assert "still starting given back before they serve" in record.reason, record.reason
            window = re.search(r"needed over the last (\d+)s \(burstiness", record.reason)
            assert window, record.reason
            found.append((15.0 * (i - ticks + 1), int(window[1]), record.reason))
    return found


def test_a_load_tested_pool_gives_back_replicas_still_starting_once_the_demand_falls(make_pool, make_world):
    decisions = rise_then_fall(make_world([make_pool(**TESTED)], ready_after=120.0), 40.0, 2)
    steady, peak = decisions[0].records[0].from_, decisions[0].desired_replicas
    assert peak > steady
    assert decisions[-1].desired_replicas == steady
    back = given_back(decisions, 2)
    assert back, "nothing given back"
    assert all(DEFAULT_TUNING.scale.give_back_after_s <= window <= after for after, window, _ in back)


def test_a_pool_without_a_load_test_keeps_its_starting_replicas_for_the_delay(make_pool, make_world):
    decisions = rise_then_fall(make_world([make_pool()], ready_after=120.0), 40.0, 2)
    assert decisions[0].desired_replicas > decisions[0].records[0].from_
    assert all(d.desired_replicas == decisions[0].desired_replicas for d in decisions)


def test_a_bursty_pool_waits_longer_before_giving_back(make_pool, make_world):
    rise = given_back(rise_then_fall(make_world([make_pool(**TESTED)], ready_after=120.0), 40.0, 2), 2)
    spike = given_back(rise_then_fall(make_world([make_pool(**TESTED)], ready_after=120.0), 60.0, 1), 1)
    assert rise and spike
    (rise_after, rise_window, _), (spike_after, spike_window, _) = rise[0], spike[0]
    assert spike_window > rise_window and spike_after > rise_after
    assert spike_window <= spike_after


@pytest.mark.parametrize("fields", POOLS.values(), ids=POOLS.keys())
def test_ready_replicas_and_a_backlog_keep_the_scale_down_delay(make_pool, make_world, fields):
    ready = rise_then_fall(make_world([make_pool(**fields)], ready_after=0.0), 60.0, 1)
    backlog = rise_then_fall(make_world([make_pool(**fields)], ready_after=120.0), 60.0, 1, waiting=500.0)
    for decisions in (ready, backlog):
        assert decisions[0].desired_replicas > decisions[0].records[0].from_
        assert all(d.desired_replicas >= decisions[0].desired_replicas for d in decisions)


def test_replicas_still_starting_are_given_back_no_faster_than_the_scale_down_limit(make_pool, make_world):
    steps = {}
    for limit in (None, 1):
        behavior = {"scaleDownLimit": limit} if limit else {}
        world = make_world([make_pool(autoscaling={"behavior": behavior}, **TESTED)], ready_after=600.0)
        counts = [d.desired_replicas for d in rise_then_fall(world, 150.0, 2, base=100.0, after=14)]
        assert counts[-1] < counts[0]
        steps[limit] = max(a - b for a, b in itertools.pairwise(counts))
    assert steps[None] >= 2 and steps[1] == 1
