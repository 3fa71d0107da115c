"""Tick scenarios (applied in a small world) and properties of the whole planner."""

from __future__ import annotations

import itertools
import json
import math
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferencefleet.errors import UserError
from inferencefleet.planner.controller import tick
from inferencefleet.planner.memory import FleetState
from inferencefleet.planner.types import PoolObservation
from inferencefleet.signals.model import SignalsSnapshot

from .conftest import World, pool, quota, signals

KEY = ("ns", "p")
SMALL_CHUNKS = {"mode": "Adaptive", "maxNumBatchedTokens": 512}
"""Adaptive with a chunked-prefill budget whose full chunk leaves room in a 20 ms ITL SLO on the 8B
(a step filled with vLLM's default 8192 prefill tokens takes 234 ms)."""


def replicas_over(world: World, rates: list[float], dt: float = 15.0, **extra) -> list[int]:
    return [world.step({"p": r}, dt, **extra).decision(KEY).desired_replicas for r in rates]


def test_steady_load_converges_and_holds(make_pool, make_world):
    world = make_world([make_pool()])
    counts = replicas_over(world, [60.0] * 30)
    assert counts[0] > 1
    assert len(set(counts[2:])) == 1


def test_step_up_scales_up_at_once(make_pool, make_world):
    world = make_world([make_pool()])
    before = replicas_over(world, [10.0] * 8)[-1]
    after = world.step({"p": 80.0}).decision(KEY)
    assert after.desired_replicas > 2 * before
    record = after.records[0]
    assert record.action == "ScaleUp"
    assert record.reason.startswith(f"scale {before} -> {after.desired_replicas}: forecast 8")
    assert "over the 120s cold start needs" in record.reason and "ITL p99 60ms" in record.reason
    assert record.reason.endswith("capped by nothing (no FleetQuota given)")


def test_spike_then_drop_waits_for_scale_down_delay(make_pool, make_world):
    world = make_world([make_pool(autoscaling={"behavior": {"scaleDownDelay": "120s", "scaleDownLimit": 0}})])
    peak = replicas_over(world, [10.0] * 4 + [100.0])[-1]
    quiet = replicas_over(world, [10.0] * 60, dt=30.0)
    first_down = next(i for i, n in enumerate(quiet) if n < peak)
    assert 30 * (first_down + 1) >= 120  # not before the delay
    assert quiet[-1] < peak


def _seconds_until_scale_down(world: World, rate: float, dt: float = 15.0) -> float:
    start = world.step({"p": rate}, dt).decision(KEY).desired_replicas
    for i in range(1, 400):
        if world.step({"p": rate}, dt).decision(KEY).desired_replicas < start:
            return i * dt
    raise AssertionError("never scaled down")


def test_the_deeper_demand_falls_below_its_recent_peak_the_longer_the_hold(make_pool, make_world):
    shallow, deep = make_world([make_pool()]), make_world([make_pool()])
    replicas_over(shallow, [80.0] * 40)
    replicas_over(deep, [80.0] * 40)
    shallow_hold = _seconds_until_scale_down(shallow, 40.0)
    deep_hold = _seconds_until_scale_down(deep, 0.5)
    assert shallow_hold >= 120  # the configured delay still applies
    assert deep_hold >= shallow_hold + 2 * 120  # two cold starts or more longer
    assert deep_hold <= 120 + 5 * 120 + 15  # at most five cold starts beyond the delay (one tick late)


@pytest.mark.parametrize(("cold_start", "delay"), [("60s", 120), ("300s", 300), ("600s", 600)])
def test_unset_scale_down_delay_is_the_cold_start_at_least_two_minutes(make_pool, make_world, cold_start, delay):
    world = make_world([make_pool(autoscaling={"coldStart": cold_start})])
    replicas_over(world, [80.0] * 80)  # long steady load: burstiness back to 1, so the delay alone holds
    hold = _seconds_until_scale_down(world, 40.0)
    assert delay <= hold <= delay + 60  # the first ticks below still see the 80 req/s rate window


def test_no_scale_down_while_requests_wait(make_pool, make_world):
    world = make_world([make_pool(autoscaling={"behavior": {"scaleDownDelay": "60s"}})])
    high = replicas_over(world, [100.0] * 8)[-1]
    backlogged = replicas_over(world, [5.0] * 40, waiting=50.0)
    assert backlogged == [high] * 40
    assert "backlog" in world.step({"p": 5.0}, waiting=50.0).decision(KEY).records[0].reason
    assert replicas_over(world, [5.0] * 60)[-1] < high


def test_a_few_requests_waiting_in_a_large_fleet_are_not_a_backlog(make_pool, make_world):
    """Fewer waiting than ready replicas are the prompts the next steps take, not a queue to drain."""
    world = make_world([make_pool(autoscaling={"behavior": {"scaleDownDelay": "60s"}})])
    high = replicas_over(world, [100.0] * 8)[-1]
    assert high > 3
    assert replicas_over(world, [5.0] * 60, waiting=high - 1.0)[-1] < high  # after the delay and its burst hold


def _first_scale_down(world: World, low_ticks: list[float]) -> int:
    high = replicas_over(world, [100.0] * 8)[-1]
    return next(i for i, w in enumerate(low_ticks) if world.step({"p": 5.0}, waiting=w).decision(KEY)
                .desired_replicas < high)


def test_a_passing_backlog_holds_but_does_not_restart_the_scale_down_delay(make_pool, make_world):
    spec = {"autoscaling": {"behavior": {"scaleDownDelay": "120s"}}}
    quiet = _first_scale_down(make_world([make_pool(**spec)]), [0.0] * 60)
    blip = _first_scale_down(make_world([make_pool(**spec)]), [0.0] * 3 + [500.0] + [0.0] * 56)
    assert quiet > 4
    assert blip == quiet


def test_a_falling_demand_is_followed_down_one_scale_down_delay_behind(make_pool, make_world):
    """The delay is a rolling window (HPA's scale-down stabilization): the count never goes below what the
    last delay needed, and each step down comes once the count it leaves is a delay old, not a whole delay
    after the step before (that staircase kept 11 replicas where 10 were needed for the last 3 minutes)."""
    world = make_world([make_pool(autoscaling={"behavior": {"scaleDownDelay": "120s"}})])
    replicas_over(world, [200.0] * 40)
    rates = [200.0 - 4.0 * i for i in range(40)] + [44.0] * 20
    counts = replicas_over(world, rates)
    alone = [replicas_over(make_world([make_pool()]), [rate] * 20)[-1] for rate in rates]
    delay, late = 8, 4  # ticks of 15 s: the delay, and a minute for the burst hold of a falling demand
    for i, count in enumerate(counts):
        assert max(alone[max(0, i - delay): i + 1]) <= count <= max(alone[max(0, i - delay - late): i + 1])
    assert counts[-1] == alone[-1] < counts[0]


def test_slow_decay_with_a_scale_down_limit_steps_down_one_replica_at_a_time(make_pool, make_world):
    world = make_world([make_pool(autoscaling={"behavior": {"scaleDownDelay": "60s", "scaleDownLimit": 1}})])
    counts = replicas_over(world, [120.0 - 2.0 * i for i in range(60)], dt=30.0)
    drops = [a - b for a, b in itertools.pairwise(counts) if b < a]
    assert drops and all(d == 1 for d in drops)
    assert counts[-1] < max(counts)


def test_after_the_delay_scale_down_goes_to_the_peak_the_window_needed(make_pool, make_world):
    world = make_world([make_pool(autoscaling={"behavior": {"scaleDownDelay": "60s"}})])
    high = replicas_over(world, [200.0] * 4)[-1]
    low = replicas_over(world, [20.0] * 80)
    needed_at_20 = replicas_over(make_world([make_pool()]), [20.0] * 4)[-1]
    drops = [a - b for a, b in itertools.pairwise([high, *low]) if b < a]
    assert drops[0] > 1  # no default limit of one replica per decision
    assert low[-1] == needed_at_20 < high


def test_a_one_tick_queue_spike_scales_up_less_than_the_same_rate_sustained(make_pool, make_world):
    spiked, sustained = make_world([make_pool()]), make_world([make_pool()])
    before = replicas_over(spiked, [10.0] * 20, dt=5.0)[-1]
    spike = spiked.step({"p": 10.0}, 5.0, waiting=1000.0).decision(KEY)  # + 200 req/s for 5 s
    steady = replicas_over(sustained, [210.0] * 20, dt=5.0)[-1]
    assert before < spike.desired_replicas < steady / 1.5
    assert spike.records[0].action == "ScaleUp"


def test_dead_band_holds_small_decreases_but_scales_up_by_one_replica(make_pool, make_world):
    """A replica short breaks the SLO for a cold start; one too many is given back after the delay."""
    world = make_world([make_pool(autoscaling={"behavior": {"tolerance": 0.5, "scaleDownDelay": "30s"}})])
    base = replicas_over(world, [80.0] * 6)[-1]
    assert replicas_over(world, [100.0] * 6)[-1] == base + 1
    assert replicas_over(world, [80.0] * 20) == [base + 1] * 20
    assert "within the 50% dead band" in world.step({"p": 80.0}).decision(KEY).records[0].reason


@pytest.mark.parametrize("mode", ["Managed", "Shadow"])
def test_missing_metrics_never_scale_down_and_say_why(make_pool, make_world, mode):
    world = make_world([make_pool(autoscaling={"mode": mode}, replicas={"min": 1, "max": 20})])
    world.replicas[KEY] = [0.0] * 5
    decision = world.step({"p": None}).decision(KEY)
    assert decision.desired_replicas == 5
    assert "signals missing (request_rate: no series for this pool" in decision.records[0].reason
    condition = decision.condition("MetricsAvailable")
    assert condition is not None and (condition.status, condition.reason) == ("False", "SignalsMissing")


def test_missing_latency_signals_leave_slo_met_unknown_and_say_why(make_pool, make_world):
    world = make_world([make_pool()])
    world.replicas[KEY] = [0.0] * 2
    decision = world.step({"p": 5.0}).decision(KEY)  # demand signals present, no p99 latency series
    assert decision.condition("MetricsAvailable").status == "True"
    condition = decision.condition("SLOMet")
    assert (condition.status, condition.reason) == ("Unknown", "NoLatencySignals")
    assert "ITL p99: no series for this pool; TTFT p99: no series for this pool" in condition.message


def test_an_idle_pool_keeps_planning_with_the_request_lengths_it_last_measured(make_pool, make_world):
    world = make_world([make_pool()])
    busy = world.step({"p": 10.0}, prompt=2048, output=28).decision(KEY)
    idle = world.step({"p": 0.0}).decision(KEY)  # no traffic: token rates say nothing about lengths
    fresh = make_world([make_pool()]).step({"p": 0.0}).decision(KEY)  # never measured: the defaults
    assert idle.sizing.replica_rate == pytest.approx(busy.sizing.replica_rate)
    assert fresh.sizing.replica_rate != pytest.approx(busy.sizing.replica_rate, rel=0.05)


def test_short_requests_for_a_while_do_not_shrink_the_lengths_planned_but_long_ones_count_at_once(make_pool,
                                                                                                   make_world):
    world = make_world([make_pool()])
    for _ in range(40):  # ten minutes of 2048-token prompts
        long = world.step({"p": 10.0}, prompt=2048).decision(KEY)
    short = world.step({"p": 10.0}, prompt=256).decision(KEY)  # one window of short prompts
    assert short.sizing.replica_rate == pytest.approx(long.sizing.replica_rate, rel=0.1)  # planned near the long ones
    for _ in range(80):  # twenty minutes of short prompts: the smoothed lengths follow
        settled = world.step({"p": 10.0}, prompt=256).decision(KEY)
    assert settled.sizing.replica_rate > 1.5 * long.sizing.replica_rate
    back = world.step({"p": 10.0}, prompt=2048).decision(KEY)  # long prompts again count at once
    assert back.sizing.replica_rate == pytest.approx(long.sizing.replica_rate, rel=0.05)


def test_a_lull_of_a_few_long_requests_does_not_count_at_once_but_a_busy_window_does(make_pool, make_world):
    """A rate window of 0.4 req/s holds about 25 requests: one long prompt among them makes the window's
    mean many times the pool's, and sized on it, a 2 req/s trickle asked for replicas.max."""
    world = make_world([make_pool(replicas={"min": 1, "max": 64})])
    for _ in range(20):
        steady = world.step({"p": 20.0}, prompt=1024, running=8.0).decision(KEY)
    lull = world.step({"p": 0.4}, prompt=12_000, running=8.0).decision(KEY)  # 24 requests in the window
    assert lull.sizing.prompt_tokens < 1.5 * steady.sizing.prompt_tokens
    busy = world.step({"p": 20.0}, prompt=4096, running=8.0).decision(KEY)  # 1,200 requests: long ones count at once
    assert busy.sizing.prompt_tokens == pytest.approx(4096, rel=0.01)


def test_requests_filling_the_batches_count_as_arrivals_before_they_complete(make_pool, make_world):
    """Engines count a request when it completes: while batches fill, completions lag the arrivals by the
    growth of the running requests, which the demand adds back."""
    world = make_world([make_pool()])
    filling = [world.step({"p": 10.0}, running=4.0 * i).decision(KEY) for i in range(1, 5)]  # +4 every 15 s
    steady = world.step({"p": 10.0}, running=16.0).decision(KEY)
    assert filling[-1].sizing.arrivals == pytest.approx(10.0 + 4.0 / 15.0)
    assert steady.sizing.arrivals < filling[-1].sizing.arrivals


def test_no_trend_is_learned_from_a_pools_first_minutes_of_traffic(make_pool, make_world):
    """Completions lag arrivals and the rate window fills: a pool's first minutes read as a ramp on flat
    demand. Extrapolated over the cold start, that ramp orders replicas nobody needs."""
    world = make_world([make_pool()])
    filling = [10.0 + 2.0 * i for i in range(6)]  # +2 req/s every 15 s from the first request
    for rate in filling:
        decision = world.step({"p": rate}).decision(KEY)
    sizing = re.search(r"forecast ([\d.]+) req/s \(no trend in the first 240s of traffic\) over the",
                       decision.records[0].reason)
    assert sizing is not None and 20.0 <= float(sizing[1]) < 21.0  # the level; the ramp extrapolated: about 28


def test_a_ramp_after_the_warm_up_is_forecast_at_its_slope(make_pool, make_world):
    """The trend starts at 0, a slope never observed; bias-corrected, the forecast of a ramp that starts
    when the slope is first learned follows the ramp instead of a fraction of it."""
    world = make_world([make_pool()])
    replicas_over(world, [10.0] * 16)  # 240 s of flat traffic
    ramp = [10.0 + 2.0 * i for i in range(1, 7)]
    for rate in ramp:
        decision = world.step({"p": rate}).decision(KEY)
    sizing = re.search(r"forecast ([\d.]+) req/s over", decision.records[0].reason)
    assert sizing is not None and float(sizing[1]) > ramp[-1] + 2  # ahead of the ramp (a trend started at 0: ~20)


def test_the_trend_warm_up_starts_again_after_a_silence(make_pool, make_world):
    world = make_world([make_pool(autoscaling={"scaleToZero": {"idleAfter": "60s"}}, replicas={"min": 0})])
    replicas_over(world, [10.0] * 20)
    replicas_over(world, [0.0] * 4)
    reason = world.step({"p": 10.0}).decision(KEY).records[0].reason
    assert "no trend in the first 240s of traffic" in reason


def test_corrections_wait_one_latency_window_after_the_ready_count_changed(make_world):
    """The p99s of that window mix the load per replica of before and after."""
    world = make_world([pool(batching={"maxNumBatchedTokens": 512})])
    replicas_over(world, [40.0] * 5, running=40.0 * 4, itl=0.08)
    learned = world.state.memory(KEY).correction.step
    world.replicas[KEY].pop()  # a replica lost: the next tick sees one fewer ready and replaces it
    replicas_over(world, [40.0] * 4, running=40.0 * 4, itl=0.12)  # ready count changed twice, 15 s apart
    assert world.state.memory(KEY).correction.step == learned
    replicas_over(world, [40.0] * 3, running=40.0 * 4, itl=0.12)
    assert world.state.memory(KEY).correction.step > learned


def test_stale_signals_count_as_missing(make_pool, make_world):
    world = make_world([make_pool()])
    world.replicas[KEY] = [0.0] * 5
    decision = world.step({"p": 0.1}, sampled_at=world.now - 600).decision(KEY)
    assert decision.desired_replicas == 5
    assert "stale (" in decision.records[0].reason


def test_cold_start_overlap_credits_starting_replicas(make_pool, make_world):
    world = make_world([make_pool()], ready_after=120.0)
    counts = replicas_over(world, [80.0] * 7)  # 7 ticks of 15 s: the new replicas are still starting
    assert counts[0] > 1
    assert counts == [counts[0]] * 7
    decision = world.step({"p": 80.0}).decision(KEY)
    assert f"hold {counts[0]} ({counts[0] - 1} still starting)" in decision.records[0].reason
    assert decision.condition("Progressing").reason == "ReplicasStarting"


def test_step_during_cold_start_adds_only_the_difference(make_pool, make_world):
    world = make_world([make_pool()], ready_after=120.0)
    replicas_over(world, [40.0] * 2)
    counts = replicas_over(world, [80.0] * 6)
    steady = replicas_over(make_world([make_pool()]), [80.0] * 30)[-1]
    assert max(counts) <= steady + 1  # the trend may add one; starting replicas are never bought twice


def test_measured_cold_start_replaces_the_spec_value(make_pool, make_world):
    world = make_world([make_pool(autoscaling={"coldStart": "120s"})], ready_after=40.0)
    replicas_over(world, [10.0, 80.0] + [80.0] * 6, dt=10.0)
    measured = world.state.memory(KEY).cold_start.seconds
    assert measured is not None and 40 <= measured <= 50  # ready after 40 s, seen at the next 10 s tick
    assert f"over the {measured:g}s cold start" in world.step({"p": 80.0}, dt=0.0).decision(KEY).records[0].reason


def test_multi_node_groups_scale_whole_and_charge_all_gpus(make_world):
    deepseek = pool("p", "premium", model={"name": "deepseek-ai/DeepSeek-V3", "architecture": "moe",
                                           "parametersBillions": 671, "quantization": "fp8"},
                    topology={"tensorParallel": 8, "pipelineParallel": 2, "expertParallel": True,
                              "nodesPerReplica": 2},
                    autoscaling={"slo": {"itlP99": "75ms", "ttftP99": "2s"}}, replicas={"min": 1, "max": 4})
    world = make_world([deepseek], quota=quota(gpus=40, tiers=[{"name": "premium", "priority": 1}]))
    decision = world.step({"p": 40.0}).decision(KEY)
    assert decision.desired_replicas == 2  # 3 groups would need 48 GPUs
    assert decision.gpus == 32 and decision.dollars_per_hour == pytest.approx(96.0)
    assert decision.condition("QuotaLimited").status == "True"
    assert "FleetQuota default limit 40 GPUs" in decision.quota_reason


def test_premium_and_free_pools_contend_for_a_short_budget(make_world):
    tiers = [{"name": "premium", "priority": 100}, {"name": "free", "priority": 10}]
    world = make_world([pool("chat", "premium"), pool("bulk", "free")], quota=quota(gpus=8, tiers=tiers))
    result = world.step({"chat": 60.0, "bulk": 150.0})
    chat, bulk = result.decision(("ns", "chat")), result.decision(("ns", "bulk"))
    assert chat.desired_replicas + bulk.desired_replicas == 8
    assert chat.condition("QuotaLimited").status == "False"
    assert bulk.condition("QuotaLimited").status == "True" and "capped at" in bulk.records[0].reason
    assert {t.name: t.capped_pools for t in result.tiers} == {"premium": 0, "free": 1}


def test_quota_below_min_says_so(make_world):
    tiers = [{"name": "free", "priority": 1}]
    world = make_world([pool("p", replicas={"min": 4, "max": 8})], quota=quota(gpus=2, tiers=tiers))
    result = world.step({"p": 1.0})
    decision = result.decision(KEY)
    assert decision.desired_replicas == 2
    assert "below replicas.min 4 because of the quota" in decision.records[0].reason
    assert result.shortfall is not None and "ns/p (2 of min 4)" in result.shortfall


def test_missing_signals_never_scale_down_even_over_a_tight_quota(make_world):
    tiers = [{"name": "free", "priority": 1, "limit": {"gpus": 4}}]
    pools = [pool(f"p{i}", replicas={"min": 1, "max": 4}) for i in range(6)]
    world = make_world(pools, quota=quota(gpus=4, tiers=tiers))
    for i in range(6):
        world.replicas[("ns", f"p{i}")] = [0.0]
    result = world.step({})  # no pool has signals
    assert [d.desired_replicas for d in result.decisions] == [1] * 6
    assert all(d.condition("MetricsAvailable").status == "False" for d in result.decisions)


def test_shadow_decides_the_same_but_does_not_apply(make_world):
    managed, shadow = make_world([pool()]), make_world([pool(autoscaling={"mode": "Shadow"})])
    a, b = managed.step({"p": 70.0}).decision(KEY), shadow.step({"p": 70.0}).decision(KEY)
    assert a.desired_replicas == b.desired_replicas > 1
    assert (a.applied, b.applied) == (True, False)
    assert shadow.replicas[KEY] == [0.0]


@pytest.mark.parametrize(("mode", "count"), [("External", 3), ("Off", 5)])
def test_external_and_off_report_and_do_not_act(make_world, mode, count):
    world = make_world([pool(autoscaling={"mode": mode}, replicas={"min": 1, "max": 8, "count": count})])
    decision = world.step({"p": 100.0}).decision(KEY)
    assert (decision.desired_replicas, decision.applied) == (count, False)
    assert decision.records[0].action == "Hold" and f"mode {mode}" in decision.records[0].reason
    assert "the planner would want" in decision.records[0].reason


def test_scale_to_zero_after_idle_then_wake(make_world):
    p = pool(replicas={"min": 0, "max": 8}, autoscaling={"scaleToZero": {"idleAfter": "5m"}})
    world = make_world([p])
    world.replicas[KEY] = [0.0, 0.0]
    counts = replicas_over(world, [0.0] * 25, dt=15.0)
    assert counts[0] >= 1 and counts[-1] == 0
    assert 15 * (counts.index(0) + 1) >= 300
    woken = world.step({"p": 0.0}, waiting=3.0).decision(KEY)
    assert woken.desired_replicas >= 1 and "wake from zero" in woken.records[0].reason
    assert min(replicas_over(world, [0.0] * 3)) >= 1  # stays up until idle again


def test_min_zero_without_scale_to_zero_keeps_one(make_world):
    world = make_world([pool(replicas={"min": 0, "max": 4})])
    world.replicas[KEY] = [0.0]
    assert replicas_over(world, [0.0] * 40, dt=60.0)[-1] == 1


def test_adaptive_batching_tight_slo_gets_smaller_batches(make_world):
    loose = pool("loose", batching=SMALL_CHUNKS, autoscaling={"slo": {"itlP99": "100ms"}})
    tight = pool("tight", batching=SMALL_CHUNKS, autoscaling={"slo": {"itlP99": "20ms"}})
    result = make_world([loose, tight]).step({"loose": 20.0, "tight": 20.0})
    small, big = result.decision(("ns", "tight")), result.decision(("ns", "loose"))
    assert 8 <= small.recommended_max_num_seqs < big.recommended_max_num_seqs == 256
    assert small.recommended_max_num_seqs % 8 == 0


def test_adaptive_batching_rollout_needs_a_meaningful_step_and_respects_cooldown(make_world):
    p = pool(batching=SMALL_CHUNKS, autoscaling={"slo": {"itlP99": "20ms"}})
    world = make_world([p])
    world.max_num_seqs[KEY] = 256
    first = world.step({"p": 30.0}).decision(KEY)
    assert first.rollout_max_num_seqs and first.max_num_seqs < 256
    assert any(r.action == "SetMaxNumSeqs" and "breaks the 20ms SLO" in r.reason for r in first.records)
    world.max_num_seqs[KEY] = first.max_num_seqs + 2  # within 25%: no new rollout
    second = world.step({"p": 30.0}).decision(KEY)
    assert not second.rollout_max_num_seqs and second.max_num_seqs == first.max_num_seqs + 2
    assert any(r.action == "KeepMaxNumSeqs" for r in second.records)


def test_fixed_batching_runs_the_maximum(make_world):
    world = make_world([pool(batching={"mode": "Fixed", "maxNumSeqs": {"max": 96}})])
    changed = world.step({"p": 5.0}).decision(KEY)  # pods run 256: the spec change needs a rollout
    assert (changed.max_num_seqs, changed.rollout_max_num_seqs) == (96, True)
    steady = world.step({"p": 5.0}).decision(KEY)
    assert (steady.max_num_seqs, steady.rollout_max_num_seqs) == (96, False)


def test_online_correction_follows_a_slower_engine(make_world):
    world = make_world([pool(batching={"maxNumBatchedTokens": 512})])
    baseline = world.step({"p": 40.0}).decision(KEY).sizing.replica_rate
    for _ in range(30):
        world.step({"p": 40.0}, running=40.0 * 4, itl=0.08, ttft=0.5)
    memory = world.state.memory(KEY)
    assert 1.5 < memory.correction.step <= 3.0
    assert world.step({"p": 40.0}).decision(KEY).sizing.replica_rate < baseline


def test_corrections_wait_one_latency_window_after_a_queue(make_world):
    world = make_world([pool(batching={"maxNumBatchedTokens": 512})])
    replicas_over(world, [40.0] * 3, running=40.0 * 12, waiting=500.0, ttft=30.0)
    learned = world.state.memory(KEY).correction.prefill
    replicas_over(world, [40.0] * 3, running=40.0 * 12, ttft=30.0)  # 45 s: the p99 still holds queued waits
    assert world.state.memory(KEY).correction.prefill == learned
    replicas_over(world, [40.0] * 2, running=40.0 * 12, ttft=30.0)
    assert world.state.memory(KEY).correction.prefill != learned


def test_slo_condition_reports_observed_latency(make_world):
    decision = make_world([pool()]).step({"p": 10.0}, itl=0.09, ttft=0.5).decision(KEY)
    condition = decision.condition("SLOMet")
    assert (condition.status, condition.reason) == ("False", "ITLAboveSLO")
    assert "ITL p99 90ms (SLO 60ms)" in condition.message


def test_state_round_trips_through_json(make_world):
    world = make_world([pool()], ready_after=30.0)
    replicas_over(world, [10.0, 50.0, 50.0])
    assert FleetState.from_json(world.state.to_json()) == world.state


def test_state_written_by_an_earlier_version_still_loads():
    """Earlier versions wrote one flat memory: queued_at (later unsteady_at), the last lengths (later smoothed
    token rates), the scale-down window's start and peak (later the replicas needed)."""
    older = json.dumps({"pools": [{"namespace": "ns", "name": "p", "queued_at": 120.0, "prompt_tokens": 900.0,
                                   "output_tokens": 200.0, "step_correction": 1.2, "low_since": 100.0,
                                   "low_peak": 4, "demand_level": 7.5, "demand_trend": 0.5,
                                   "demand_peak": 9.0, "demand_mean": None, "slo_headroom": 1.1,
                                   "needs": [[100.0, 3]], "cold_start_s": 95.0, "max_num_seqs": 64}]})
    memory = FleetState.from_json(older).memory(KEY)
    assert (memory.correction.unsteady_at, memory.correction.step, memory.shape.rates) == (120.0, 1.2, None)
    assert (memory.demand.holt.level, memory.demand.holt.trend, memory.demand.envelope) == (7.5, 0.5, None)
    assert (memory.headroom.value, memory.scale.needs, memory.cold_start.seconds) == (1.1, ((100.0, 3),), 95.0)
    assert memory.rollout.max_num_seqs == 64
    with pytest.raises(UserError, match=r"unknown fields \['typo'\]"):
        FleetState.from_json(json.dumps({"pools": [{"namespace": "ns", "name": "p", "typo": 1}]}))


POOL_COUNT = 5


@settings(max_examples=40, deadline=None)
@given(
    rates=st.lists(st.one_of(st.none(), st.floats(0, 300)), min_size=POOL_COUNT, max_size=POOL_COUNT),
    current=st.lists(st.integers(0, 12), min_size=POOL_COUNT, max_size=POOL_COUNT),
    gpus=st.one_of(st.none(), st.integers(0, 40)),
    dollars=st.one_of(st.none(), st.floats(0, 120)),
    seed=st.integers(0, 100),
)
def test_property_bounds_budget_and_order_independence(rates, current, gpus, dollars, seed):
    tiers = ("premium", "standard", "free")
    pools = [pool(f"p{i}", tiers[i % 3], replicas={"min": 1 + i % 2, "max": 6 + i},
                  topology={"gpu": {"type": "A100-80GB" if i % 2 else "H100-80GB"}}) for i in range(POOL_COUNT)]
    q = quota(gpus=gpus, dollars=dollars)
    now = 5000.0
    snapshot = SignalsSnapshot(at=now, pools=[signals(f"p{i}", now, r) for i, r in enumerate(rates)])
    observed = {("ns", f"p{i}"): PoolObservation(c, c, 256 if c else None) for i, c in enumerate(current)}
    result = tick(pools, q, snapshot, observed, FleetState(), now)
    shuffled = list(pools)
    random.Random(seed).shuffle(shuffled)
    assert tick(shuffled, q, snapshot, observed, FleetState(), now) == result
    # A pool without signals is never scaled down, quota or not; the others share what the budget has left.
    blind = [d for d in result.decisions if d.condition("MetricsAvailable").status != "True"]
    seeing = [d for d in result.decisions if d not in blind]
    assert all(d.desired_replicas >= d.current_replicas for d in blind if d.current_replicas <= 6)
    assert gpus is None or sum(d.gpus for d in seeing) <= max(0, gpus - sum(d.gpus for d in blind))
    assert dollars is None or sum(d.dollars_per_hour for d in seeing) <= max(
        0.0, dollars - sum(d.dollars_per_hour for d in blind)) + 1e-9
    for p, d in zip(pools, result.decisions, strict=True):
        bounds = p.spec.replicas
        assert d.desired_replicas <= bounds.max
        if d.desired_replicas < bounds.min:
            assert d.condition("QuotaLimited").status == "True"
            assert "because of the quota" in d.records[0].reason


@settings(max_examples=15, deadline=None)
@given(rate=st.floats(0.5, 250), start=st.integers(1, 15))
def test_property_constant_demand_converges_then_never_changes(rate, start):
    world = World([pool(replicas={"min": 1, "max": 40})])
    world.replicas[KEY] = [0.0] * start
    counts = replicas_over(world, [rate] * 100, dt=30.0)
    settled = counts[80:]  # 14 scale-downs of one replica, 5 ticks each (120 s delay), take at most 70
    assert len(set(settled)) == 1


def test_a_pool_starting_into_full_traffic_reads_the_request_shape_of_its_admitted_requests(make_pool, make_world):
    """Engines count prompt tokens at prefill but requests at completion. Both pools prefill 9 requests of
    1,380 prompt tokens a second; the steady one completes 9 a second, the one starting into full traffic 2
    (its running requests grow by 35 in 5 s). Its planned rate per replica is the one of the true shape, not
    of 6,200-token prompts (prompt tokens over completions)."""
    steady, starting = make_world([make_pool()]), make_world([make_pool()])
    steady.step({"p": 9.0}, 5.0, running=35.0, prompt=1380)
    starting.step({"p": 0.0}, 5.0, running=0.0)
    truth = steady.step({"p": 9.0}, 5.0, running=35.0, prompt=1380).decision(KEY).sizing.replica_rate
    early = starting.step({"p": 2.0}, 5.0, running=35.0, prompt=1380 * 9 / 2, output=256 * 9 / 2)
    assert early.decision(KEY).sizing.replica_rate == pytest.approx(truth, rel=0.02)


def test_the_admitted_requests_are_counted_over_the_whole_rate_window(make_pool, make_world):
    """The token rates span the rate window, so the running requests' growth does too: 30 admitted in the
    first 5 s and none since still count 10 s later (prompt tokens of 40 requests, 10 completions)."""
    steady, starting = make_world([make_pool()]), make_world([make_pool()])
    for _ in range(2):
        steady.step({"p": 4.0}, 5.0, running=30.0, prompt=1380)
    truth = steady.step({"p": 4.0}, 5.0, running=30.0, prompt=1380).decision(KEY).sizing.replica_rate
    starting.step({"p": 0.0}, 5.0, running=0.0)
    starting.step({"p": 1.0}, 5.0, running=30.0, prompt=1380 * 7, output=256 * 7)
    early = starting.step({"p": 1.0}, 5.0, running=30.0, prompt=1380 * 4, output=256 * 4)
    assert early.decision(KEY).sizing.replica_rate == pytest.approx(truth, rel=0.02)


def test_a_rollout_waits_until_the_quota_has_room_for_its_surge_replica(make_world):
    fixed = pool(batching={"mode": "Fixed", "maxNumSeqs": {"max": 96}}, replicas={"min": 1, "max": 1})
    tiers = [{"name": "free", "priority": 1}]
    full = make_world([fixed], quota=quota(gpus=1, tiers=tiers)).step({"p": 1.0}).decision(KEY)
    assert (full.max_num_seqs, full.rollout_max_num_seqs) == (256, False)  # pods run 256; 96 must wait
    [kept] = [r for r in full.records if r.action == "KeepMaxNumSeqs"]
    assert "no room for the rollout's surge replica (FleetQuota default limit" in kept.reason
    room = make_world([fixed], quota=quota(gpus=2, tiers=tiers)).step({"p": 1.0}).decision(KEY)
    assert (room.max_num_seqs, room.rollout_max_num_seqs) == (96, True)


def test_a_running_rollout_is_charged_before_other_pools_grow():
    from inferencefleet.planner.quota import QuotaRequest, allocate

    budget = quota(gpus=4, tiers=[{"name": "free", "priority": 1}])
    rolling = QuotaRequest(("ns", "a"), "free", 2, 2, 1, "H100-80GB", False, surge=1, rolling=True)
    growing = QuotaRequest(("ns", "b"), "free", 3, 1, 1, "H100-80GB", False)
    grants = allocate(budget, [rolling, growing]).grants
    assert grants[("ns", "a")].granted + grants[("ns", "b")].granted == 3  # 4 GPUs, one held by the surge
    assert grants[("ns", "a")].surge_refused is None


def test_the_sizing_trace_adds_up_to_the_replicas_and_the_reason_is_rendered_from_it(make_world):
    world = make_world([pool(autoscaling={"behavior": {"targetUtilization": 0.8}})], quota=quota(gpus=4))
    replicas_over(world, [30.0] * 25, ttft=3.0)  # TTFT above its SLO: a slower prefill is learned
    decision = world.step({"p": 30.0}, ttft=3.0).decision(KEY)
    trace = decision.sizing
    assert trace.demand == pytest.approx(max(trace.arrivals, trace.forecast) + trace.backlog)
    assert trace.replica_rate == pytest.approx(trace.slo_rate * trace.target_utilization / trace.headroom)
    assert trace.prefill_multiplier > 1.0 and trace.target_utilization == 0.8
    assert trace.needed == math.ceil(trace.demand / trace.replica_rate - 1e-9)
    assert trace.quota_cap == 4 and trace.wanted > 4 and trace.desired == decision.desired_replicas == 4
    assert (trace.horizon, trace.prompt_tokens, trace.output_tokens) == (120.0, 1024.0, 256.0)
    reason = decision.records[0].reason
    assert f"forecast {trace.demand:.1f} req/s over the 120s cold start needs {trace.needed} replicas" in reason
    assert f"({trace.replica_rate:.1f} req/s per replica" in reason


def test_without_signals_the_trace_has_no_demand_but_still_the_capacity(make_world):
    world = make_world([pool()])
    trace = world.step({"p": None}).decision(KEY).sizing
    assert (trace.demand, trace.arrivals, trace.needed) == (None, None, None)
    assert trace.replica_rate > 0 and trace.batch > 0 and trace.desired == 1
