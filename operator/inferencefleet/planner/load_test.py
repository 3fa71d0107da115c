"""The capacity model calibrated to a measured load test (spec.capacity.loadTest).

A load test says how many req/s one replica of the engine as deployed serves within the SLOs at the
test's mean lengths. The profile's step and prefill times are scaled by one factor, found by bisection,
so that the model's SLO rate at those lengths is the measured rate; the online correction still learns
on top. One factor for both: a rate is one number and cannot tell a slow step from a slow prefill.

A calibrated model has no error left to serve as an accidental buffer for climbs, so a pool with a load
test plans a deliberate one (``climb_margin``): demand keeps rising during the cold start of the replicas
ordered for it. With that spare capacity planned, such a pool gives back replicas still starting that
the demand no longer needs (autoscale.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ..api.v1alpha1 import InferencePoolSpec, LoadTestSpec
from .capacity import CapacityProfile
from .slo import Correction, ReplicaModel, Workload, slo_capacity

FACTORS = (1 / 8, 8.0)
"""Range of the calibration factor: an engine eight times faster or slower than its profile is a
mistaken load test (other model, other GPUs), not a calibration."""
ITERATIONS = 40
"""Bisection steps over the (geometric) factor range: far below 0.1% of the factor."""


@dataclass(frozen=True)
class Calibration:
    """The calibrated profile, its factor on step and prefill time, and why it was clamped ('' if not)."""

    profile: CapacityProfile
    factor: float
    problem: str = ""


def calibrated(profile: CapacityProfile, spec: InferencePoolSpec, itl_margin: float) -> Calibration | None:
    """``profile`` calibrated to spec.capacity.loadTest (None when the pool declares no load test), with the
    SLO rate the sizing uses (the p99 ITL planned at ``itl_margin`` x its SLO)."""
    test = spec.capacity.loadTest if spec.capacity is not None else None
    if test is None:
        return None
    slo = spec.autoscaling.slo
    return _calibrate(profile, test, spec.batching.maxNumSeqs.max, spec.batching.maxNumBatchedTokens,
                      slo.itlP99, slo.ttftP99, itl_margin)


def climb_margin(cold_start: float, per_minute: float) -> float:
    """The divisor of the planned rate per replica: 1 + ``per_minute`` x the cold start in minutes."""
    return 1.0 + per_minute * max(cold_start, 0.0) / 60.0


@lru_cache(maxsize=4096)
def _calibrate(profile: CapacityProfile, test: LoadTestSpec, max_num_seqs: int, max_num_batched_tokens: int,
               itl_slo: float, ttft_slo: float, itl_margin: float) -> Calibration:
    workload = Workload(test.promptTokens, test.outputTokens)

    def rate(factor: float) -> float:
        model = ReplicaModel(profile, Correction(factor, factor), workload, max_num_batched_tokens)
        return slo_capacity(model, max_num_seqs, itl_slo, ttft_slo, itl_margin).rate

    low, high = FACTORS
    slowest, fastest = rate(high), rate(low)
    if slowest > test.requestsPerSecond:
        return Calibration(profile.scaled(high, high), high, _beyond(test, slowest, "slower", high))
    if fastest < test.requestsPerSecond:
        return Calibration(profile.scaled(low, low), low, _beyond(test, fastest, "faster", 1 / low))
    for _ in range(ITERATIONS):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if rate(mid) > test.requestsPerSecond else (low, mid)
    factor = math.sqrt(low * high)
    return Calibration(profile.scaled(factor, factor), factor)


def _beyond(test: LoadTestSpec, reached: float, way: str, times: float) -> str:
    return (f"spec.capacity.loadTest: {test.requestsPerSecond:g} req/s at {test.promptTokens}+{test.outputTokens} "
            f"tokens is beyond the profile even {times:g}x {way} ({reached:.3g} req/s); planning with that "
            f"bound: check the load test's model, GPUs and lengths")
