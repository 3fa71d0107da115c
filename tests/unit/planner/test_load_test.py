"""spec.capacity.loadTest: the capacity model calibrated to a measured rate, and the climb margin it plans."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from inferencefleet.planner.capacity import profile_for
from inferencefleet.planner.load_test import FACTORS, calibrated, climb_margin
from inferencefleet.planner.slo import Correction, ReplicaModel, Workload, slo_capacity
from inferencefleet.planner.tuning import DEFAULT_TUNING

from .conftest import pool

KEY = ("ns", "p")
ITL_MARGIN = DEFAULT_TUNING.batching.itl_margin
LOAD_TEST = {"requestsPerSecond": 6.0, "promptTokens": 2000, "outputTokens": 300}


def model_rate(spec, profile) -> float:
    """The SLO rate of ``profile`` at the load test's lengths and batch limit."""
    test, slo = spec.capacity.loadTest, spec.autoscaling.slo
    model = ReplicaModel(profile, Correction(), Workload(test.promptTokens, test.outputTokens),
                         spec.batching.maxNumBatchedTokens)
    return slo_capacity(model, spec.batching.maxNumSeqs.max, slo.itlP99, slo.ttftP99, ITL_MARGIN).rate


@pytest.mark.parametrize("rate", [0.5, 6.0, 40.0])
def test_the_calibrated_model_serves_the_load_tested_rate(rate):
    spec = pool(capacity={"loadTest": {**LOAD_TEST, "requestsPerSecond": rate}}).spec
    calibration = calibrated(profile_for(spec), spec, ITL_MARGIN)
    assert calibration is not None and calibration.problem == ""
    assert model_rate(spec, calibration.profile) == pytest.approx(rate, rel=1e-3)


def test_a_faster_load_test_calibrates_a_faster_engine():
    factors = []
    for rate in (2.0, 6.0, 18.0):
        spec = pool(capacity={"loadTest": {**LOAD_TEST, "requestsPerSecond": rate}}).spec
        factors.append(calibrated(profile_for(spec), spec, ITL_MARGIN).factor)
    assert factors == sorted(factors, reverse=True)
    assert factors[0] > 1 > factors[-1]


def test_no_load_test_no_calibration():
    spec = pool().spec
    assert calibrated(profile_for(spec), spec, ITL_MARGIN) is None


def test_a_load_test_beyond_any_plausible_engine_is_clamped_and_says_why():
    spec = pool(capacity={"loadTest": {**LOAD_TEST, "requestsPerSecond": 5000.0}}).spec
    calibration = calibrated(profile_for(spec), spec, ITL_MARGIN)
    assert calibration.factor == FACTORS[0]
    assert "spec.capacity.loadTest: 5000 req/s" in calibration.problem and "8x faster" in calibration.problem


def test_load_test_lengths_must_fit_the_context():
    with pytest.raises(ValidationError, match=r"capacity.loadTest: promptTokens \+ outputTokens \(8000 \+ 300\) "
                                              r"must fit model.maxContextTokens \(8192\)"):
        pool(capacity={"loadTest": {**LOAD_TEST, "promptTokens": 8000}})


@pytest.mark.parametrize("field, value", [("requestsPerSecond", 0), ("promptTokens", 0), ("outputTokens", -1)])
def test_load_test_values_must_be_positive(field, value):
    with pytest.raises(ValidationError, match=field):
        pool(capacity={"loadTest": {**LOAD_TEST, field: value}})


def test_the_climb_margin_grows_with_the_cold_start():
    per_minute = DEFAULT_TUNING.scale.climb_margin_per_minute
    assert climb_margin(0.0, per_minute) == 1.0
    assert climb_margin(60.0, per_minute) < climb_margin(300.0, per_minute)
    assert climb_margin(300.0, per_minute) == pytest.approx(1 + 5 * per_minute)


def test_a_load_tested_pool_sizes_on_the_test_and_says_so(make_pool, make_world):
    plain = make_world([make_pool()])
    tested = make_world([make_pool(capacity={"loadTest": LOAD_TEST})])
    for world in (plain, tested):
        for _ in range(10):
            decision = world.step({"p": 30.0}).decision(KEY)
    sizing = decision.sizing
    assert sizing.load_test_factor == pytest.approx(
        calibrated(profile_for(tested.pools[0].spec), tested.pools[0].spec, ITL_MARGIN).factor)
    assert sizing.climb_margin == pytest.approx(climb_margin(120.0, DEFAULT_TUNING.scale.climb_margin_per_minute))
    assert sizing.replica_rate == pytest.approx(
        sizing.slo_rate * sizing.target_utilization / (sizing.headroom * sizing.climb_margin))
    assert sizing.needed == pytest.approx(30.0 / sizing.replica_rate, abs=1)
    reason = decision.records[0].reason
    assert f"load test x{sizing.load_test_factor:.2f} step and prefill time" in reason
    assert f"climb margin x{sizing.climb_margin:.2f} for the cold start" in reason
    plain_sizing = plain.step({"p": 30.0}).decision(KEY).sizing
    assert plain_sizing.load_test_factor is None and plain_sizing.climb_margin == 1.0
    status = decision.sizing.to_status()
    assert status.loadTestFactor == pytest.approx(sizing.load_test_factor, rel=1e-2)
    assert status.climbMargin == pytest.approx(sizing.climb_margin, rel=1e-2)


def test_a_clamped_load_test_is_reported_on_the_slo_condition(make_pool, make_world):
    world = make_world([make_pool(capacity={"loadTest": {**LOAD_TEST, "requestsPerSecond": 5000.0}})])
    decision = world.step({"p": 30.0}).decision(KEY)
    assert "spec.capacity.loadTest: 5000 req/s" in decision.condition("SLOMet").message


def spike_then_fall(world, waiting: float = 0.0) -> list:
    """Decisions of a pool steady at 30 req/s, then one 15 s tick at 60 req/s, then 30 req/s again."""
    for _ in range(20):
        world.step({"p": 30.0})
    return [world.step({"p": rate}, waiting=waiting).decision(KEY) for rate in [60.0] + [30.0] * 7]


def test_a_load_tested_pool_gives_back_replicas_still_starting_once_the_demand_falls(make_pool, make_world):
    tested = spike_then_fall(make_world([make_pool(capacity={"loadTest": LOAD_TEST})], ready_after=120.0))
    plain = spike_then_fall(make_world([make_pool()], ready_after=120.0))
    steady, peak = tested[0].records[0].from_, tested[0].desired_replicas
    assert peak > steady
    assert tested[-1].desired_replicas == steady
    given_back = [(i, d.records[0]) for i, d in enumerate(tested) if d.records[0].action == "ScaleDown"]
    assert given_back and all("still starting given back before they serve" in r.reason for _, r in given_back)
    window = DEFAULT_TUNING.scale.give_back_after_s
    assert 15 * given_back[0][0] > window, "given back while the spike is still within the window"
    assert all(d.desired_replicas == plain[0].desired_replicas for d in plain)  # no load test: the delay holds


def test_ready_replicas_and_a_backlog_keep_the_scale_down_delay_on_a_load_tested_pool(make_pool, make_world):
    ready = spike_then_fall(make_world([make_pool(capacity={"loadTest": LOAD_TEST})], ready_after=0.0))
    backlog = spike_then_fall(make_world([make_pool(capacity={"loadTest": LOAD_TEST})], ready_after=120.0),
                              waiting=500.0)
    for decisions in (ready, backlog):
        assert all(d.desired_replicas >= decisions[0].desired_replicas for d in decisions)


def test_replicas_still_starting_are_given_back_no_faster_than_the_scale_down_limit(make_pool, make_world):
    limited = make_pool(capacity={"loadTest": LOAD_TEST}, autoscaling={"behavior": {"scaleDownLimit": 1}})
    decisions = spike_then_fall(make_world([limited], ready_after=120.0))
    counts = [d.desired_replicas for d in decisions]
    steps = [a - b for a, b in itertools.pairwise(counts)]
    assert max(steps) == 1 and counts[-1] < counts[0]
