"""Oracle: the cold-start-aware schedule, the load-tested replica capacity, and the replayed bound."""

from __future__ import annotations

import itertools
import random

import pytest

from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.planner.types import pool_key
from inferencefleet.sim.baselines import StaticPolicy
from inferencefleet.sim.fleet import simulate
from inferencefleet.sim.oracle import WINDOW, minute_foresight, needed, oracle, plan, replica_capacity
from inferencefleet.sim.replica import Request
from inferencefleet.sim.traces import Trace, bundled_trace_path, load_trace, scale_rate, truncate


def test_plan_keeps_a_replica_through_gaps_shorter_than_the_cold_start() -> None:
    need = [2, 0, 0, 0, 2]
    short = plan(need, cold_start=60)  # a 180 s gap costs more than restarting (60 s)
    assert sorted(short.lifetimes) == [(0.0, 60.0), (0.0, 60.0), (180.0, 300.0), (180.0, 300.0)]
    assert short.alive(30) == 2 and short.alive(100) == 0 and short.alive(200) == 2
    long = plan(need, cold_start=300)  # restarting would cost 300 s, keeping 180 s
    assert sorted(long.lifetimes) == [(0.0, 300.0), (0.0, 300.0)]
    assert short.gpu_hours(1, 300) < long.gpu_hours(1, 300)
    assert plan([1, 3, 1], cold_start=60).initial() == 3  # needed within one cold start of the beginning


def test_plan_respects_minimum_and_gives_every_window_its_need() -> None:
    need = [1, 4, 2, 0, 5, 3]
    schedule = plan(need, cold_start=120, minimum=1)
    for w, n in enumerate(need):
        t = w * WINDOW + WINDOW / 2
        ready = sum(max(start + 120, 0) <= t < end if start > 0 else start <= t < end
                    for start, end in schedule.lifetimes)
        assert ready >= max(n, 1)


def test_needed_scales_with_the_rate() -> None:
    trace = load_trace(bundled_trace_path())
    single, triple = needed(trace, 2.0, trace.duration), needed(scale_rate(trace, 3.0), 2.0, trace.duration)
    assert all(t >= s for s, t in zip(single, triple, strict=True)) and sum(triple) > 2 * sum(single)


def make_pool(ttft: str = "1s") -> InferencePool:
    return InferencePool.model_validate({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "tier": "free", "replicas": {"min": 1, "max": 20},
        "autoscaling": {"coldStart": "60s", "slo": {"ttftP99": ttft, "itlP99": "50ms"}},
        "batching": {"maxNumBatchedTokens": 1024}}})  # a step with a full chunk stays within the ITL SLO


@pytest.fixture(scope="module")
def pool() -> InferencePool:
    return make_pool()


def test_replica_capacity_meets_the_slo_and_shrinks_with_a_tighter_one(pool: InferencePool) -> None:
    lengths = load_trace(bundled_trace_path())
    capacity = replica_capacity(pool, lengths, requests=1000)
    tight = replica_capacity(make_pool("300ms"), lengths, requests=1000)
    assert capacity.rate > 1.0 and tight.rate < capacity.rate
    assert capacity.concurrency > 0


def test_oracle_meets_every_window_and_costs_no_more_than_static_peak(pool: InferencePool) -> None:
    trace = truncate(scale_rate(load_trace(bundled_trace_path()), 6), 420)
    key = pool_key(pool)
    capacity = {key: replica_capacity(pool, trace, requests=1000)}
    outcome = oracle([pool], {key: trace}, capacity)
    result = outcome.result.pools[0]
    assert result.missed_windows == [] and result.attainment >= 0.99
    peak = max(needed(trace, capacity[key].rate, trace.duration))
    static = simulate([pool], {key: trace}, StaticPolicy({key: peak}), initial_replicas={key: peak})
    assert outcome.result.gpu_hours <= static.gpu_hours * 1.0001 or static.pools[0].missed_windows


def bursts() -> Trace:
    """Each minute's 1,500 requests arrive within 4 s: the minute's mean needs 3 replicas, the burst about 10."""
    return Trace("bursts", tuple(Request(w * 1500 + j, w * WINDOW + 20 + 4 * j / 1500, 1024, 64)
                                 for w in range(4) for j in range(1500)))


def steady_poisson(rate: float, seconds: float, seed: int = 3) -> Trace:
    """Poisson arrivals at ``rate`` req/s, lengths from the bundled trace."""
    rng = random.Random(seed)
    lengths = load_trace(bundled_trace_path())
    arrivals = list(itertools.accumulate(rng.expovariate(rate) for _ in range(int(seconds * rate))))
    shapes = [lengths.requests[rng.randrange(len(lengths.requests))] for _ in arrivals]
    return Trace("poisson", tuple(Request(i, t, s.prompt_tokens, s.output_tokens)
                                  for i, (t, s) in enumerate(zip(arrivals, shapes, strict=True))))


def test_oracle_meets_every_window_of_second_long_bursts(pool: InferencePool) -> None:
    trace = bursts()
    key = pool_key(pool)
    capacity = {key: replica_capacity(pool, trace, requests=1000)}
    mean_need = needed(trace, capacity[key].rate, trace.duration)
    outcome = oracle([pool], {key: trace}, capacity)
    assert outcome.result.pools[0].missed_windows == [] and outcome.result.attainment >= 0.99
    assert outcome.peak[key] >= 3 * max(mean_need)


def test_oracle_lowers_windows_a_pooled_fleet_does_not_need(pool: InferencePool) -> None:
    """Steady Poisson load at 10x one replica's load-tested SLO capacity: ten replicas behind one router
    serve more than ten times one replica, so the lowering rounds find a cheaper schedule that still
    meets every window."""
    capacity = replica_capacity(pool, load_trace(bundled_trace_path()), requests=1000)
    trace = steady_poisson(10 * capacity.rate, 240)
    key = pool_key(pool)
    raised = oracle([pool], {key: trace}, {key: capacity}, lowering_rounds=0)
    lowered = oracle([pool], {key: trace}, {key: capacity})
    assert raised.result.pools[0].missed_windows == [] == lowered.result.pools[0].missed_windows
    assert lowered.result.gpu_hours < raised.result.gpu_hours


def test_minute_foresight_needs_the_bursts_headroom_that_a_minutes_mean_hides(pool: InferencePool) -> None:
    """Knowing each minute's mean rate is not enough for second-long bursts: 99% takes several times
    the mean's need, and the oracle (which knows the bursts) costs less."""
    trace = bursts()
    key = pool_key(pool)
    capacity = replica_capacity(pool, trace, requests=1000)
    seen = minute_foresight(pool, trace, capacity)
    assert seen.result.attainment >= 0.99 and seen.headroom >= 3
    assert oracle([pool], {key: trace}, {key: capacity}).result.gpu_hours < seen.result.gpu_hours


def test_minute_foresight_of_a_steady_load_is_its_mean_need(pool: InferencePool) -> None:
    capacity = replica_capacity(pool, load_trace(bundled_trace_path()), requests=1000)
    trace = steady_poisson(6 * capacity.rate, 240)
    seen = minute_foresight(pool, trace, capacity)
    assert seen.result.attainment >= 0.99 and seen.headroom <= 1.25


def test_replica_capacity_is_an_error_when_no_rate_meets_the_slo() -> None:
    """Prompts whose prefill alone exceeds the TTFT SLO: the load test says so instead of a vanishing rate."""
    pool = make_pool("100ms")  # the 8B replica prefills about 35k tokens/s: 7000 tokens take 0.2 s
    long_prompts = Trace("long", tuple(Request(i, float(i), 7000, 50) for i in range(50)))
    with pytest.raises(ValueError, match="cannot get 99% of these requests within the SLOs"):
        replica_capacity(pool, long_prompts, requests=200)


def test_replica_capacity_draws_only_requests_within_the_context_limit(pool: InferencePool) -> None:
    too_long = Trace("too-long", tuple(Request(i, float(i), 9000, 50) for i in range(10)))  # > 8192 tokens
    with pytest.raises(ValueError, match=r"no request of too-long fits spec\.model\.maxContextTokens = 8192"):
        replica_capacity(pool, too_long, requests=200)
