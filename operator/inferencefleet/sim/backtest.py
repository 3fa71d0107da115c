"""Backtest: replay a cluster's own history through the planner and the simulator, against what ran.

From each pool's history (``signals.history.PoolHistory``, one value per step):
- **arrivals**: the completion rate x step requests per step (fractions carried to the next step,
  so the total is kept), evenly spaced inside the step that ends at the sample (never two at the
  same time); each takes the step's mean prompt and
  output lengths (token rates / request rate; the last known lengths where the token rates are
  missing). A step with no request rate (a scrape gap, the pool not existing) has no arrivals.
  Engines count a request when it completes, so arrivals lag the real ones by their latency.
- **what ran**: the pool's ready replicas (scrape targets up, the operator's ``ready_replicas``
  signal) x its GPUs per replica over each step; replicas still starting are not counted. A
  step's requests are within SLO when that step's p99 TTFT and ITL were within the SLO (p99s
  missing: not within).
- **inferencefleet in shadow**: the arrivals replayed through the simulator under the planner
  (``InferenceFleetPolicy``), starting from the replicas that were ready at the start. Pools that
  existed over the same steps replay together, under the FleetQuota if one is given; a pool that
  appeared or disappeared replays over its own lifetime.
Both become ``SimResult``s on one time axis (seconds from the history's start), so the report
treats them like any two policies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ..api.v1alpha1 import FleetQuota, InferencePool
from ..planner.types import PoolKey, pool_key
from ..render.cost import report_price
from ..signals.history import PoolHistory
from .fleet import PoolResult, SimResult, simulate
from .planner_policy import InferenceFleetPolicy
from .replica import Request
from .timeline import Timeline
from .traces import Trace

WHAT_RAN = "what ran"


def arrivals(history: PoolHistory) -> Trace:
    """The requests the history's completion rate implies, with the step's mean lengths (times from its start)."""
    rates, prompts, outputs = (history.series(n) for n in
                               ("request_rate", "prompt_tokens_per_second", "output_tokens_per_second"))
    requests: list[Request] = []
    carry = 0.0
    prompt, output = 1, 1
    for k, rate in enumerate(rates):
        if k == 0 or rate is None or rate <= 0:  # step 0's requests completed before the history's start
            continue
        if prompts[k] is not None and outputs[k] is not None:
            prompt = max(1, round(prompts[k] / rate))  # type: ignore[operator]
            output = max(1, round(outputs[k] / rate))  # type: ignore[operator]
        carry += rate * history.step
        count = math.floor(carry + 1e-9)
        carry -= count
        begin = (k - 1) * history.step
        requests.extend(Request(f"{k}.{i}", begin + (i + 0.5) * history.step / count, prompt, output)
                        for i in range(count))
    return Trace("/".join(history.key), tuple(requests))


def lifetime(history: PoolHistory) -> tuple[int, int] | None:
    """First and last step with any value (the pool existed and was scraped), or None."""
    present = [k for k in range(history.steps) if any(history.series(n)[k] is not None for n in history.values)]
    return (present[0], present[-1]) if present else None


def what_ran(pool: InferencePool, history: PoolHistory, quota: FleetQuota | None) -> SimResult:
    """The history as a result: ready replicas, their GPU-hours, and the requests of steps within SLO."""
    spec = pool.spec
    gpus = spec.topology.gpus
    price = report_price(pool, quota)[0]
    result = PoolResult(pool_key(pool), spec.tier, gpus, price or 0.0)
    slo = spec.autoscaling.slo
    ready, ttft, itl, rates = (history.series(n) for n in ("ready_replicas", "ttft_p99", "itl_p99", "request_rate"))
    trace = arrivals(history)
    per_step = [0] * history.steps
    tokens = [0] * history.steps
    for request in trace.requests:
        k = min(history.steps - 1, int(request.arrival // history.step) + 1)
        per_step[k] += 1
        tokens[k] += request.prompt_tokens + request.output_tokens
    series: list[dict[str, float | str]] = []
    missed: set[int] = set()
    for k in range(history.steps):
        replicas = ready[k] or 0.0
        first_token, inter_token = ttft[k], itl[k]
        result.gpu_hours += replicas * gpus * history.step / 3600
        met = (first_token is not None and inter_token is not None and first_token <= slo.ttftP99
               and inter_token <= slo.itlP99)
        result.requests += per_step[k]
        if met:
            result.good += per_step[k]
            result.good_tokens += tokens[k]
        elif per_step[k]:
            missed.add(int(k * history.step // 60))
        result.peak_replicas = max(result.peak_replicas, round(replicas))
        series.append({
            "t": k * history.step, "pool": "/".join(result.key), "tier": spec.tier,
            "arrivals_per_s": rates[k] or 0.0, "ready": replicas, "replicas": replicas, "gpus": replicas * gpus,
            "dollars_per_hour": replicas * gpus * (price or 0.0), "dollars": result.gpu_hours * (price or 0.0),
            "ttft_p99": first_token if first_token is not None else math.nan,
            "itl_p99": inter_token if inter_token is not None else math.nan,
        })
    known = [v for v in ttft if v is not None]
    result.ttft_p99 = max(known) if known else math.nan
    known = [v for v in itl if v is not None]
    result.itl_p99 = max(known) if known else math.nan
    result.windows = len({int(r.arrival // 60) for r in trace.requests})
    result.missed_windows = sorted(missed)
    return SimResult(WHAT_RAN, history.steps * history.step, [result], series)


@dataclass(frozen=True)
class Backtest:
    """What ran and what inferencefleet would have done, on one time axis."""

    what_ran: SimResult
    shadow: SimResult
    timeline: Timeline
    arrivals: dict[PoolKey, Trace]


def backtest(pools: Sequence[InferencePool], histories: Mapping[PoolKey, PoolHistory], quota: FleetQuota | None,
             *, tick: float = 5.0) -> Backtest:
    """Replay every pool that has history; pools sharing a lifetime replay together."""
    by_key = {pool_key(p): p for p in pools}
    keys = [k for k in sorted(by_key) if k in histories and lifetime(histories[k]) is not None]
    if not keys:
        raise ValueError("no pool of the -f files has history in the range")
    step = histories[keys[0]].step
    horizon = histories[keys[0]].steps * step
    groups: dict[tuple[int, int], list[PoolKey]] = {}
    for key in keys:
        groups.setdefault(lifetime(histories[key]) or (0, 0), []).append(key)
    ran = [what_ran(by_key[k], histories[k], quota) for k in keys]
    traces = {k: arrivals(histories[k]) for k in keys}
    timeline = Timeline.for_pools([by_key[k] for k in keys])
    shadow_pools: list[PoolResult] = []
    series: list[dict[str, float | str]] = []
    wall = 0.0
    for (first, last), members in sorted(groups.items()):
        offset = max(0.0, (first - 1) * step)
        local = {k: Trace(traces[k].name, tuple(replace(r, arrival=r.arrival - offset)
                                                   for r in traces[k].requests if r.arrival >= offset))
                 for k in members}
        start = {k: max(1, round(histories[k].series("ready_replicas")[first] or 0.0)) for k in members}
        part = Timeline.for_pools([by_key[k] for k in members])
        result = simulate([by_key[k] for k in members], local, InferenceFleetPolicy(tick, part.on_tick),
                          quota=quota, initial_replicas=start, horizon=(last - first + 1) * step)
        for pool in result.pools:
            pool.dollars_per_gpu_hour = report_price(by_key[pool.key], quota)[0] or 0.0
            pool.missed_windows = [w + int(offset // 60) for w in pool.missed_windows]
        shadow_pools.extend(result.pools)
        series.extend({**row, "t": float(row["t"]) + offset} for row in result.series)
        timeline.marks.extend(replace(m, t=m.t + offset) for m in part.marks)
        timeline.shortfalls.extend(replace(s, t=s.t + offset) for s in part.shortfalls)
        timeline.tiers.extend(replace(s, t=s.t + offset) for s in part.tiers)
        timeline.batch.update({pool: [(t + offset, v) for t, v in steps] for pool, steps in part.batch.items()})
        wall += result.wall_seconds
    whole_ran = SimResult(WHAT_RAN, horizon, [p for r in ran for p in r.pools], [row for r in ran for row in r.series])
    shadow = SimResult("inferencefleet", horizon, sorted(shadow_pools, key=lambda p: p.key),
                       sorted(series, key=lambda row: float(row["t"])), wall)
    return Backtest(whole_ran, shadow, timeline, traces)
