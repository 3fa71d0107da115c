"""Replicas still starting are given back once the demand no longer needs them; ready ones keep the delay."""

from __future__ import annotations

import itertools

import pytest

from inferencefleet.planner.tuning import DEFAULT_TUNING

KEY = ("ns", "p")
LOAD_TEST = {"requestsPerSecond": 6.0, "promptTokens": 2000, "outputTokens": 300}
POOLS = {"without a load test": {}, "with a load test": {"capacity": {"loadTest": LOAD_TEST}}}


def spike_then_fall(world, waiting: float = 0.0) -> list:
    """Decisions of a pool steady at 30 req/s, then one 15 s tick at 60 req/s, then 30 req/s again."""
    for _ in range(20):
        world.step({"p": 30.0})
    return [world.step({"p": rate}, waiting=waiting).decision(KEY) for rate in [60.0] + [30.0] * 7]


@pytest.mark.parametrize("fields", POOLS.values(), ids=POOLS.keys())
def test_replicas_still_starting_are_given_back_once_the_demand_falls(make_pool, make_world, fields):
    decisions = spike_then_fall(make_world([make_pool(**fields)], ready_after=120.0))
    steady, peak = decisions[0].records[0].from_, decisions[0].desired_replicas
    assert peak > steady
    assert decisions[-1].desired_replicas == steady
    given_back = [(i, d.records[0]) for i, d in enumerate(decisions) if d.records[0].action == "ScaleDown"]
    window = DEFAULT_TUNING.scale.give_back_after_s
    assert given_back and all("still starting given back before they serve" in r.reason
                              and f"needed over the last {window:.0f}s" in r.reason for _, r in given_back)
    assert 15 * given_back[0][0] > window, "given back while the spike is still within the window"


@pytest.mark.parametrize("fields", POOLS.values(), ids=POOLS.keys())
def test_ready_replicas_and_a_backlog_keep_the_scale_down_delay(make_pool, make_world, fields):
    ready = spike_then_fall(make_world([make_pool(**fields)], ready_after=0.0))
    backlog = spike_then_fall(make_world([make_pool(**fields)], ready_after=120.0), waiting=500.0)
    for decisions in (ready, backlog):
        assert decisions[0].desired_replicas > decisions[0].records[0].from_
        assert all(d.desired_replicas >= decisions[0].desired_replicas for d in decisions)


def test_replicas_still_starting_are_given_back_no_faster_than_the_scale_down_limit(make_pool, make_world):
    limited = make_pool(autoscaling={"behavior": {"scaleDownLimit": 1}})
    decisions = spike_then_fall(make_world([limited], ready_after=120.0))
    counts = [d.desired_replicas for d in decisions]
    steps = [a - b for a, b in itertools.pairwise(counts)]
    assert max(steps) == 1 and counts[-1] < counts[0]
