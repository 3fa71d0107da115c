"""SLO headroom: an integral term on observed p99 / SLO that asks for more replicas per unit of demand."""

from __future__ import annotations

import pytest

from inferencefleet.planner.headroom import SloHeadroom
from inferencefleet.planner.tuning import HeadroomTuning

from .test_controller import KEY, replicas_over

T = HeadroomTuning()


def updated(value: float, ratios: list[float], dt: float, settled: bool) -> float:
    return SloHeadroom(value).observed(ratios, dt, settled, T).value


@pytest.mark.parametrize(("ratios", "settled", "expected"), [
    ([2.0], True, 1.0 + T.rise_per_s * 10),       # p99 at twice the SLO: the full rise
    ([1.5, 0.2], True, 1.0 + T.rise_per_s * 5),   # the worst ratio counts, by how far it is above
    ([9.0], True, 1.0 + T.rise_per_s * 10),       # a rise per second is capped at ratio 2
    ([2.0], False, 1.0),                                 # replicas still coming: the miss is the ramp's
    ([0.9], True, 1.0),                                  # within the SLO but not well below: hold
    ([], True, 1.0),                                     # no latency observed: hold
])
def test_headroom_rises_only_on_settled_misses(ratios, settled, expected):
    assert updated(1.0, ratios, 10.0, settled) == pytest.approx(expected)


def test_headroom_falls_slowly_well_below_the_slo_and_stays_within_bounds():
    assert updated(1.2, [0.5], 100.0, True) == pytest.approx(1.2 - T.fall_per_s * 100)
    assert updated(1.0, [0.1], 1e6, True) == 1.0
    assert updated(T.max, [5.0], 1e6, True) == T.max
    assert updated(1.0, [float("nan")], 10.0, True) == 1.0


def test_a_pool_missing_its_ttft_slo_at_steady_load_gets_more_replicas_and_says_why(make_pool, make_world):
    calm, hot = make_world([make_pool()]), make_world([make_pool()])
    steady = replicas_over(calm, [60.0] * 60, ttft=1.0)[-1]  # TTFT SLO 2s: well within
    counts = replicas_over(hot, [60.0] * 60, ttft=3.2)  # same demand, p99 60% above the SLO
    assert counts[-1] > steady
    reason = hot.step({"p": 60.0}, ttft=3.2).decision(KEY).records[0].reason
    assert "headroom x" in reason and "after p99s above the SLO" in reason


def test_a_tuning_with_a_faster_rise_and_a_lower_cap_is_followed():
    fast = HeadroomTuning(rise_per_s=0.06, max=1.2)
    assert SloHeadroom().observed([2.0], 1.0, True, fast).value == pytest.approx(1.06)
    assert SloHeadroom().observed([2.0], 100.0, True, fast).value == 1.2
