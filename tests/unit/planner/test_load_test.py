"""spec.capacity.loadTest: the capacity model calibrated to a measured rate, and the climb margin it plans."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from inferencefleet.planner.capacity import profile_for
from inferencefleet.planner.load_test import FACTORS, calibrated, climb_margin
from inferencefleet.planner.slo import Correction, ReplicaModel, Workload, slo_capacity
from inferencefleet.planner.tuning import DEFAULT_TUNING

from .conftest import LOAD_TEST, pool

KEY = ("ns", "p")
ITL_MARGIN = DEFAULT_TUNING.batching.itl_margin


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
