"""The offline lower bound on GPU-hours (metrics-calibration-baselines.md section 5).

1. ``replica_capacity``: the largest Poisson arrival rate one replica serves with at least 99% of
   requests meeting both SLOs (binary search, lengths drawn from the trace, first 10% of requests
   discarded as warm-up). This is the load test an engineer would run.
2. ``plan``: per 1-minute window w, n_w = ceil(lambda_w / c) replicas must be ready. Replicas
   are interchangeable, so the cheapest schedule that respects the cold start L treats each level
   k = 1..max n_w separately: the replica of level k serves the windows with n_w >= k; across a
   gap between two such runs it stays up if the gap is at most L (cheaper than stopping and paying
   L again), otherwise it stops and is requested again L before it is next needed. Replicas
   serving the first window are ready at t = 0 (every policy starts warm the same way).
3. ``oracle``: replays that schedule through the fleet simulator; every window in which fewer than
   99% of requests met both SLOs gets 20% more replicas (at least one), and it replays again until
   every window meets the SLO (at most ROUNDS replays), so the bound is checked against the
   simulated latencies, not only the capacity estimate. The step stays small so the bound stays
   tight; second-long bursts (the Azure code trace) need several times a minute's mean rate and so
   more rounds. Raising a window that missed can over-provision it (its miss may have been the
   previous window's backlog) and ceil(lambda_w / c) can over-provision a pooled fleet (replicas
   behind one router serve more than c each), so then every window is lowered by one replica at a
   time (at most LOWERING_ROUNDS replays): a lowering that keeps every window at 99% is kept; a
   window that missed, and the one before it, stay where they were. The result reports its
   attainment and any window still missed (when raising never met the SLO).
4. ``peak``: max_w n_w after those rounds, the static peak-provisioning reference (without the
   rounds, ceil(peak rate / c) can miss windows that the oracle is required to meet).
5. ``minute_foresight``: what a perfect forecast of every minute's mean rate buys. Each window gets
   ceil(k x lambda_w / c) replicas, started a cold start ahead (``plan``), with the smallest uniform
   headroom k >= 1 (doubling, then bisection) at which at least 99% of all requests meet both SLOs. An autoscaler
   knows at most the minutes already past; where even this schedule costs more than a target allows,
   meeting the target takes foresight of the bursts inside a minute (the Azure code trace).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..api.v1alpha1 import FleetQuota, InferencePool, LoadTestSpec
from ..planner.capacity import profile_for
from ..planner.types import PoolKey, pool_key
from ..signals.model import SignalsSnapshot
from .engine import EngineFactory, EngineOptions
from .fleet import Policy, PoolView, SimResult, Target, fits_context, meets_slos, simulate
from .replica import Replica, Request
from .traces import Trace

WINDOW = 60.0
"""Seconds per oracle window."""
BUMP = 0.2
"""Share of a window's replicas added when it missed the SLO in a replay round."""
ROUNDS = 12
"""Most replays while raising windows that missed the SLO."""
LOWERING_ROUNDS = 4
"""Most replays while lowering windows that may need less."""
FORESIGHT_HEADROOM_MAX = 64.0
"""Most headroom over the minute's mean need ``minute_foresight`` tries (doubling from 1)."""
FORESIGHT_PRECISION = 0.05
"""``minute_foresight`` bisects until the headroom is known to within this share of it."""
LOAD_TEST_FLOOR = 1e-3
"""Slowest arrival rate (req/s) the load test tries: below it one replica counts as serving nothing."""
GOOD_SHARE = 0.99
"""Share of requests that must meet both SLOs (per replica in the load test, per window in the oracle)."""


@dataclass(frozen=True)
class ReplicaCapacity:
    """What one replica serves within the SLOs."""

    rate: float
    """Largest Poisson arrival rate (req/s) with >= 99% of requests meeting both SLOs."""
    utilization: float
    concurrency: float
    """Mean requests in flight at ``utilization`` x rate (Little's law: arrival rate x mean latency)."""
    prompt_tokens: int
    """Mean prompt length of the load test's requests (rounded)."""
    output_tokens: int
    """Mean output length of the load test's requests (rounded)."""

    def load_test(self) -> LoadTestSpec:
        """This load test as a pool's spec.capacity.loadTest."""
        return LoadTestSpec(requestsPerSecond=self.rate, promptTokens=self.prompt_tokens,
                            outputTokens=self.output_tokens)


def replica_capacity(pool: InferencePool, lengths: Trace, *, requests: int = 2000, seed: int = 0,
                     tolerance: float = 0.02, utilization: float = 0.85,
                     engine: EngineOptions | None = None) -> ReplicaCapacity:
    """Load-test one replica of ``pool`` with Poisson arrivals and lengths drawn from ``lengths``.

    ``engine``: load-test the simulator's engine at its mean speed (None: the planner's profile).

    Lengths are drawn from the requests the pool can take (within ``maxContextTokens``): the others
    are rejected at any rate. ValueError when no length fits, or when fewer than 99% of the requests
    meet the SLOs even at LOAD_TEST_FLOOR req/s, where requests hardly ever overlap.
    """
    spec = pool.spec
    profile = profile_for(spec) if engine is None else EngineFactory(spec, engine).typical()
    servable = [r for r in lengths.requests if fits_context(r, spec.model.maxContextTokens)]
    if not servable:
        raise ValueError(f"{pool.metadata.name}: no request of {lengths.name} fits spec.model.maxContextTokens "
                         f"= {spec.model.maxContextTokens} (prompt + output tokens)")
    rng = random.Random(seed)
    shapes = [servable[rng.randrange(len(servable))] for _ in range(requests)]
    gaps = [rng.expovariate(1.0) for _ in range(requests)]
    ttft_slo, itl_slo = spec.autoscaling.slo.ttftP99, spec.autoscaling.slo.itlP99

    def measure(rate: float) -> tuple[float, float]:
        """(share of requests meeting both SLOs, mean end-to-end latency) at ``rate``; refused requests miss."""
        replica = Replica(profile, max_num_seqs=min(spec.batching.maxNumSeqs.max, spec.batching.maxNumBatchedTokens),
                          max_num_batched_tokens=spec.batching.maxNumBatchedTokens, itl_slo=itl_slo)
        t = 0.0
        for i, (shape, gap) in enumerate(zip(shapes, gaps, strict=True)):
            t += gap / rate
            replica.submit(Request(i, t, shape.prompt_tokens, shape.output_tokens))
        replica.advance(math.inf)
        skip = requests // 10  # warm-up: the first 10% to finish are dropped
        done = replica.finished[skip:]
        good = sum(all(meets_slos(c, ttft_slo)) for c in done)
        counted = len(done) + replica.stats.requests_rejected
        return good / counted, (sum(c.e2e for c in done) / len(done) if done else math.inf)

    low, high = 0.0, 1.0
    while measure(high)[0] >= GOOD_SHARE:
        low, high = high, high * 2
        if high > 1e6:
            raise ValueError("replica capacity above 1e6 req/s: the capacity profile is implausible")
    while low == 0.0 and high > LOAD_TEST_FLOOR:
        high /= 2
        if measure(high)[0] >= GOOD_SHARE:
            low, high = high, 2 * high
    if low == 0.0:
        share = measure(LOAD_TEST_FLOOR)[0]
        raise ValueError(
            f"{pool.metadata.name}: one replica cannot get 99% of these requests within the SLOs "
            f"(ttftP99 {ttft_slo:g}s, itlP99 {itl_slo:g}s) even at {LOAD_TEST_FLOOR:g} req/s: "
            f"{share:.1%} meet them; raise the SLOs or shorten the requests"
        )
    while high - low > tolerance * high:
        middle = (low + high) / 2
        low, high = (middle, high) if measure(middle)[0] >= GOOD_SHARE else (low, middle)
    return ReplicaCapacity(low, utilization, utilization * low * measure(utilization * low)[1],
                           round(sum(s.prompt_tokens for s in shapes) / len(shapes)),
                           round(sum(s.output_tokens for s in shapes) / len(shapes)))


def needed(trace: Trace, capacity: float, horizon: float) -> list[int]:
    """Replicas each 1-minute window needs: ceil(arrival rate / capacity), at least 1 while requests arrive."""
    windows = max(1, math.ceil(horizon / WINDOW))
    counts = [0] * windows
    for request in trace.requests:
        counts[min(int(request.arrival // WINDOW), windows - 1)] += 1
    lengths = [min(WINDOW, horizon - w * WINDOW) if w == windows - 1 else WINDOW for w in range(windows)]
    return [math.ceil(c / max(length, 1.0) / capacity) if c else 0 for c, length in zip(counts, lengths, strict=True)]


@dataclass(frozen=True)
class Schedule:
    """Replica lifetimes: (requested at, removed at) in seconds; ready at max(requested + L, 0)."""

    lifetimes: tuple[tuple[float, float], ...]

    def alive(self, t: float) -> int:
        """Replicas requested or serving at ``t``."""
        return sum(start <= t < end for start, end in self.lifetimes)

    def gpu_hours(self, gpus_per_replica: int, horizon: float) -> float:
        return sum(max(0.0, min(end, horizon) - max(start, 0.0)) for start, end in self.lifetimes) \
            * gpus_per_replica / 3600

    def initial(self) -> int:
        """Replicas ready at t = 0."""
        return sum(start <= 0.0 < end for start, end in self.lifetimes)


def plan(need: Sequence[int], cold_start: float, minimum: int = 0) -> Schedule:
    """The cheapest lifetimes giving each window its need (level by level; see the module docstring)."""
    levels = max([minimum, *need], default=0)
    lifetimes = []
    for level in range(1, levels + 1):
        runs: list[list[int]] = []  # [first, last] windows served
        for w, n in enumerate(need):
            if max(n, minimum) >= level:
                if runs and (w - runs[-1][1] - 1) * WINDOW <= cold_start:
                    runs[-1][1] = w
                else:
                    runs.append([w, w])
        for first, last in runs:
            start = 0.0 if first == 0 else first * WINDOW - cold_start
            lifetimes.append((start, (last + 1) * WINDOW))
    return Schedule(tuple(lifetimes))


class ScheduledPolicy(Policy):
    """Follows precomputed schedules (the oracle's); re-checks every second so starts are on time."""

    name = "oracle"
    interval = 1.0

    def __init__(self, schedules: Mapping[PoolKey, Schedule]) -> None:
        self.schedules = dict(schedules)

    def decide(self, now: float, signals: SignalsSnapshot, pools: Mapping[PoolKey, PoolView]) -> dict[PoolKey, Target]:
        return {key: Target(schedule.alive(now)) for key, schedule in self.schedules.items()}


@dataclass(frozen=True)
class OracleOutcome:
    """The oracle's run, its schedules and the per-replica capacity used."""

    result: SimResult
    schedules: dict[PoolKey, Schedule]
    capacity: dict[PoolKey, ReplicaCapacity]
    peak: dict[PoolKey, int]
    """Most replicas any window needed after the replay rounds (the static peak-provisioning reference)."""
    rounds: int
    """Replays of the trace it took."""


def scheduled_run(
    pools: Sequence[InferencePool],
    traces: Mapping[PoolKey, Trace],
    need: Mapping[PoolKey, Sequence[int]],
    *,
    quota: FleetQuota | None = None,
    progress: Callable[[float, float], None] | None = None,
    engine: EngineOptions | None = None,
) -> tuple[SimResult, dict[PoolKey, Schedule]]:
    """Replay the traces with every pool following the cheapest schedule (``plan``) for its windows' need."""
    by_key = {pool_key(p): p for p in pools}
    schedules = {k: plan(n, by_key[k].spec.autoscaling.coldStart, by_key[k].spec.replicas.min) for k, n in need.items()}
    result = simulate(pools, traces, ScheduledPolicy(schedules), quota=quota,
                      horizon=max(t.duration for t in traces.values()), progress=progress,
                      initial_replicas={k: s.initial() for k, s in schedules.items()}, engine=engine)
    return result, schedules


def oracle(
    pools: Sequence[InferencePool],
    traces: Mapping[PoolKey, Trace],
    capacity: Mapping[PoolKey, ReplicaCapacity],
    *,
    quota: FleetQuota | None = None,
    rounds: int = ROUNDS,
    lowering_rounds: int = LOWERING_ROUNDS,
    progress: Callable[[float, float], None] | None = None,
    engine: EngineOptions | None = None,
) -> OracleOutcome:
    """Plan from the capacity; raise every window that missed 99% and replay until none does; then
    lower the windows one replica at a time, keeping what still meets the SLO (module docstring)."""
    horizon = max(t.duration for t in traces.values())
    need = {pool_key(p): needed(traces[pool_key(p)], capacity[pool_key(p)].rate, horizon) for p in pools}
    replays = 0

    def replay(counts: dict[PoolKey, list[int]]) -> tuple[SimResult, dict[PoolKey, Schedule], dict[PoolKey, list[int]]]:
        nonlocal replays
        replays += 1
        result, schedules = scheduled_run(pools, traces, counts, quota=quota, progress=progress, engine=engine)
        missed = {p.key: [w for w in p.missed_windows if w < len(counts[p.key])] for p in result.pools}
        return result, schedules, missed

    for _ in range(rounds):
        result, schedules, missed = replay(need)
        if not any(missed.values()):
            break
        for key, windows in missed.items():
            for w in windows:
                need[key][w] += max(1, math.ceil(BUMP * need[key][w]))
    else:
        lowering_rounds = 0  # the SLO was never met: nothing to lower from
    firm: dict[PoolKey, set[int]] = {k: set() for k in need}
    for _ in range(lowering_rounds):
        trial = {k: [n if w in firm[k] else _lowered(n) for w, n in enumerate(counts)] for k, counts in need.items()}
        if trial == need:
            break
        tried, tried_schedules, missed = replay(trial)
        if not any(missed.values()):
            need, result, schedules = trial, tried, tried_schedules
            continue
        for key, windows in missed.items():  # a window that missed, and the one before it (its backlog), stay
            firm[key].update(w2 for w in windows for w2 in (w - 1, w) if w2 >= 0)
    peak = {k: max(n, default=0) for k, n in need.items()}
    return OracleOutcome(result, schedules, dict(capacity), peak, replays)


def _lowered(count: int) -> int:
    """One replica less, never below one where there was one (a window with requests keeps a replica)."""
    return count - 1 if count > 1 else count


@dataclass(frozen=True)
class ForesightOutcome:
    """The cheapest minute-foresight schedule found and its headroom over the minutes' mean need."""

    result: SimResult
    headroom: float
    replays: int


def minute_foresight(pool: InferencePool, trace: Trace, capacity: ReplicaCapacity, *,
                     most: float = FORESIGHT_HEADROOM_MAX, engine: EngineOptions | None = None) -> ForesightOutcome:
    """The smallest headroom k over each minute's mean need whose schedule (known a cold start ahead) gets
    99% of requests within both SLOs (module docstring, 5): k doubles from 1 until it does, then
    bisection to within FORESIGHT_PRECISION; at ``most``, whatever it reaches, when nothing below does."""
    key = pool_key(pool)
    replays = 0

    def replay(headroom: float) -> SimResult:
        nonlocal replays
        replays += 1
        return scheduled_run([pool], {key: trace}, {key: needed(trace, capacity.rate / headroom, trace.duration)},
                             engine=engine)[0]

    low, high = 1.0, 1.0
    best = replay(high)
    while best.attainment < GOOD_SHARE and high < most:
        low, high = high, min(2 * high, most)
        best = replay(high)
    while best.attainment >= GOOD_SHARE and high - low > FORESIGHT_PRECISION * high:
        middle = (low + high) / 2
        trial = replay(middle)
        if trial.attainment >= GOOD_SHARE:
            high, best = middle, trial
        else:
            low = middle
    return ForesightOutcome(best, high, replays)
