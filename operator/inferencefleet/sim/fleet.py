"""Replay a trace through simulated pools of replicas driven by an autoscaling policy.

Pure and deterministic. What is modelled:
- each pool's replicas are ``Replica`` objects (one replica = one group of ``nodesPerReplica``
  nodes for multi-node pools, scaled as a whole) whose engine is ``sim.engine``'s when ``engine``
  options are given (measured tables, an engine error, per-replica spread: the planner has to find
  it), else the planner's own ``planner.capacity.profile_for`` (a closed world, for mechanics tests);
- a replica costs its GPUs from the moment it is requested; it serves from its cold start later
  (``coldStart``, or drawn around it by the engine options);
- the router sends each request to the ready replica with the fewest outstanding requests; with
  none ready, requests wait at the gateway (counted as waiting) until one is;
- every ``scrape_interval`` the pool's metrics are scraped into a ``PromView``; every
  ``policy.interval`` the policy sees those signals (and the observed replicas) and sets the
  desired replicas; extra replicas are removed newest-starting first, then the ready replica with
  the fewest outstanding requests, which drains (no new requests, keeps its cost until empty);
- the run lasts until the last arrival; requests still in flight then finish (their latencies
  count), cost stops at the horizon.
- a request whose prompt plus output tokens exceed ``maxContextTokens`` is rejected at once, as
  vLLM rejects one exceeding ``--max-model-len`` (HTTP 400): it counts as a request that missed its
  SLOs (``PoolResult.rejected``), never as served; so is one that can never fit a replica's KV cache.
The SLOs are p99 objectives (``SloSpec``): the pool meets ``slo.ttftP99`` when at least 99% of its
requests have a TTFT within it, and ``slo.itlP99`` when each request's own p99 inter-token latency
(nearest rank over its gaps) is within it. A request meets both SLOs when both checks pass
(``meets_slos``); the share of such requests is the attainment. The mean time per output token is
reported beside them (``tpot_ok``), for comparison with DistServe's weaker per-request check.
"""

from __future__ import annotations

import heapq
import itertools
import math
import operator
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..api.v1alpha1 import FleetQuota, InferencePool
from ..planner.capacity import CapacityProfile, profile_for
from ..planner.types import PoolKey, PoolObservation, pool_key
from ..signals.buckets import ITL_EDGES
from ..signals.model import SignalsSnapshot
from .engine import EngineFactory, EngineOptions
from .histogram import histogram_quantile
from .promview import Counters, PoolScrape, PromView
from .replica import Completion, Replica, Request
from .traces import Trace

RECORD_INTERVAL = 10.0
"""Seconds between time-series rows of the report."""


def meets_slos(done: Completion, ttft_slo: float) -> tuple[bool, bool]:
    """(TTFT within ``slo.ttftP99``, its own p99 inter-token latency within ``slo.itlP99``) for one request.

    The ITL check is counted by the replica against the ``itl_slo`` it was built with.
    """
    return done.ttft <= ttft_slo, done.itl_ok


def fits_context(request: Request, max_context_tokens: int) -> bool:
    """The request's prompt plus output tokens fit ``maxContextTokens`` (vLLM rejects it otherwise)."""
    return request.prompt_tokens + request.output_tokens <= max_context_tokens


@dataclass(frozen=True)
class Target:
    """What a policy wants for one pool."""

    replicas: int
    max_num_seqs: int | None = None
    """--max-num-seqs for replicas created from now on (None: keep)."""


@dataclass(frozen=True)
class PoolView:
    """What a policy may observe about one pool at a decision time."""

    pool: InferencePool
    observation: PoolObservation
    concurrency: float
    """Requests in flight on ready replicas plus those waiting at the gateway (Knative's metric)."""


class Policy:
    """An autoscaler: called every ``interval`` seconds of simulated time."""

    name = "policy"
    interval = 5.0

    def start(self, pools: Sequence[InferencePool], quota: FleetQuota | None) -> None:
        """Reset before a run."""

    def decide(self, now: float, signals: SignalsSnapshot, pools: Mapping[PoolKey, PoolView]) -> dict[PoolKey, Target]:
        """Targets for the pools it wants to change."""
        raise NotImplementedError


@dataclass
class _SimReplica:
    replica: Replica
    requested_at: float
    ready_at: float
    draining_since: float | None = None


@dataclass
class PoolResult:
    """Outcome of one pool in one run."""

    key: PoolKey
    tier: str
    gpus_per_replica: int
    dollars_per_gpu_hour: float
    requests: int = 0
    good: int = 0
    """Requests that met both SLOs."""
    good_tokens: int = 0
    """Prompt plus output tokens of the requests that met both SLOs."""
    ttft_ok: int = 0
    """Requests whose TTFT was within ``slo.ttftP99``."""
    itl_ok: int = 0
    """Requests whose own p99 inter-token latency was within ``slo.itlP99`` (at most 1% of gaps above it)."""
    tpot_ok: int = 0
    """Requests whose mean time per output token was within ``slo.itlP99`` (weaker; for comparison)."""
    rejected: int = 0
    """Requests refused: longer than ``maxContextTokens`` or than a replica's KV cache (missed their SLOs)."""
    gpu_hours: float = 0.0
    ttft_p99: float = math.nan
    """Exact p99 TTFT over all requests (s)."""
    itl_p99: float = math.nan
    """Token-level p99 inter-token latency from vLLM's histogram buckets (s)."""
    e2e_p99: float = math.nan
    windows: int = 0
    missed_windows: list[int] = field(default_factory=list)
    """Indexes of 1-minute arrival windows in which fewer than 99% of requests met both SLOs."""
    peak_replicas: int = 0

    @property
    def attainment(self) -> float:
        return self.good / self.requests if self.requests else 1.0

    @property
    def dollars(self) -> float:
        return self.gpu_hours * self.dollars_per_gpu_hour

    @property
    def gaps_ok(self) -> int:
        """The name ``sim.report`` reads for ``itl_ok``."""
        return self.itl_ok

    @property
    def good_windows(self) -> int:
        """1-minute arrival windows in which at least 99% of requests met both SLOs."""
        return self.windows - len(self.missed_windows)


@dataclass
class SimResult:
    """One policy's run over one trace."""

    policy: str
    horizon: float
    pools: list[PoolResult]
    series: list[dict[str, float | str]] = field(default_factory=list)
    """Rows every RECORD_INTERVAL s: t, pool, arrivals_per_s, ready, replicas, gpus, tier, dollars_per_hour, dollars, ttft_p99, itl_p99."""
    wall_seconds: float = 0.0
    """Wall time of the replay that gave this result."""
    replays: int = 1
    """Replays of the trace this result took (the oracle's rounds), each as long as the last."""

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.pools)

    @property
    def gpu_hours(self) -> float:
        return sum(p.gpu_hours for p in self.pools)

    @property
    def dollars(self) -> float:
        return sum(p.dollars for p in self.pools)

    @property
    def attainment(self) -> float:
        total = self.requests
        return sum(p.good for p in self.pools) / total if total else 1.0

    @property
    def requests_per_wall_second(self) -> float:
        return self.requests / self.wall_seconds if self.wall_seconds > 0 else math.inf


class _Pool:
    """Runtime state of one pool."""

    def __init__(self, pool: InferencePool, quota: FleetQuota | None, engine: EngineOptions | None) -> None:
        spec = pool.spec
        self.pool = pool
        self.key = pool_key(pool)
        self.engines = None if engine is None else EngineFactory(spec, engine)
        self.profile: CapacityProfile = profile_for(spec)
        self.cold_start = spec.autoscaling.coldStart
        self.ttft_slo = spec.autoscaling.slo.ttftP99
        self.itl_slo = spec.autoscaling.slo.itlP99
        self.max_context_tokens = spec.model.maxContextTokens
        self.max_num_seqs = spec.batching.maxNumSeqs.max
        self.batched_tokens = spec.batching.maxNumBatchedTokens
        price = quota.spec.price(spec.topology.gpu.type) if quota is not None else None
        self.result = PoolResult(self.key, spec.tier, spec.topology.gpus, price or 0.0)
        self.live: list[_SimReplica] = []
        self.ready: list[_SimReplica] = []
        self._serving: list[Replica] = []  # the ready replicas, for the router
        self._outstanding: list[int] = []  # their outstanding requests, as of their last update
        self._slot: dict[int, int] = {}  # id(replica) -> index in _serving
        self._events: list[tuple[float, int, Replica]] = []  # (next event, order, replica), lazily deleted
        self._order = itertools.count()
        self.pending: deque[Request] = deque()
        self.retired = Counters()
        self.outcomes: list[tuple[float, float, bool]] = []  # arrival, ttft, good
        self.e2e: list[float] = []
        self.arrivals_since_record = 0

    # -------------------------------------------------------------- replicas
    def add(self, now: float, ready_now: bool = False) -> _SimReplica:
        model, cold_start = (self.profile, self.cold_start) if self.engines is None else self.engines.replica()
        ready_at = now if ready_now else now + cold_start
        replica = Replica(model, max_num_seqs=min(self.max_num_seqs, self.batched_tokens),
                          max_num_batched_tokens=self.batched_tokens, itl_slo=self.itl_slo, start=ready_at)
        sim = _SimReplica(replica, now, ready_at)
        self.live.append(sim)
        if ready_now:
            self._serve(sim)
        return sim

    def _serve(self, sim: _SimReplica) -> None:
        self.ready.append(sim)
        self._slot[id(sim.replica)] = len(self._serving)
        self._serving.append(sim.replica)
        self._outstanding.append(sim.replica.outstanding)

    def _reindex(self) -> None:
        """Rebuild the router's view after replicas left the serving set or were advanced outside it."""
        self._slot = {id(r): i for i, r in enumerate(self._serving)}
        self._outstanding = [r.outstanding for r in self._serving]

    def _watch(self, replica: Replica) -> None:
        """Remember when the router must next bring ``replica`` up to date."""
        if replica.next_event != math.inf:
            heapq.heappush(self._events, (replica.next_event, next(self._order), replica))

    def make_ready(self, sim: _SimReplica) -> None:
        if sim.draining_since is None and sim in self.live:
            self._serve(sim)
            while self.pending:
                self.route(self.pending.popleft())

    def scale_to(self, now: float, target: int) -> list[_SimReplica]:
        """Add or remove replicas to reach ``target``; returns the replicas added."""
        serving = [s for s in self.live if s.draining_since is None]
        added = [self.add(now) for _ in range(target - len(serving))]
        excess = len(serving) - target
        if excess <= 0:
            return added
        starting = sorted((s for s in serving if s not in self.ready), key=lambda s: -s.requested_at)
        for sim in starting[:excess]:
            self._retire(sim, now)
        for _ in range(excess - min(excess, len(starting))):
            sim = min(self.ready, key=lambda s: s.replica.outstanding)
            self.ready.remove(sim)
            self._serving.remove(sim.replica)
            self._reindex()
            sim.draining_since = now
            self._retire_if_drained(sim, now)
        return added

    def _retire_if_drained(self, sim: _SimReplica, now: float) -> None:
        replica = sim.replica
        replica.advance(now)
        if replica.idle:
            self._collect(replica)
            self._retire(sim, max(sim.draining_since or now, min(replica.clock, now)))

    def _retire(self, sim: _SimReplica, at: float) -> None:
        self.live.remove(sim)
        self.retired.add(sim.replica.stats)
        self.result.gpu_hours += max(0.0, at - sim.requested_at) * self.result.gpus_per_replica / 3600

    # -------------------------------------------------------------- requests
    def route(self, request: Request) -> None:
        if not fits_context(request, self.max_context_tokens):
            self._reject(request)
            return
        if not self.ready:
            self.pending.append(request)
            return
        at = request.arrival
        events, slot, outstanding = self._events, self._slot, self._outstanding
        advanced: list[Replica] = []
        while events and events[0][0] <= at:
            when, _, replica = heapq.heappop(events)
            index = slot.get(id(replica))
            if when == replica.next_event and index is not None:
                replica.advance(at)
                outstanding[index] = replica.outstanding
                advanced.append(replica)
        for replica in advanced:  # watched again only now: an event still due at ``at`` has nothing before it to run
            self._watch(replica)
        index = outstanding.index(min(outstanding))  # the first of the least loaded, in serving order
        best = self._serving[index]
        accepted = best.submit(request)
        outstanding[index] = best.outstanding
        self._watch(best)
        if not accepted:
            self._reject(request)

    def _reject(self, request: Request) -> None:
        self.result.rejected += 1
        self.result.requests += 1
        self.outcomes.append((request.arrival, math.inf, False))

    def _collect(self, replica: Replica) -> None:
        for done in replica.take_finished():
            self._record(done)

    def _record(self, done: Completion) -> None:
        ttft_ok, itl_ok = meets_slos(done, self.ttft_slo)
        result = self.result
        result.requests += 1
        result.ttft_ok += ttft_ok
        result.itl_ok += itl_ok
        result.tpot_ok += done.tpot <= self.itl_slo
        result.good += ttft_ok and itl_ok
        if ttft_ok and itl_ok:
            result.good_tokens += done.request.prompt_tokens + done.request.output_tokens
        self.outcomes.append((done.request.arrival, done.ttft, ttft_ok and itl_ok))
        self.e2e.append(done.e2e)

    # -------------------------------------------------------------- observation
    def sync(self, now: float) -> None:
        """Bring every replica to ``now``, collect completions, retire drained replicas."""
        for sim in list(self.live):
            if sim.draining_since is not None:
                self._retire_if_drained(sim, now)
            elif sim.ready_at <= now:
                sim.replica.advance(now)
                self._watch(sim.replica)
                self._collect(sim.replica)
        self._reindex()

    def scrape(self, now: float) -> PoolScrape:
        replicas = [s.replica for s in self.live if s.ready_at <= now]
        counters = Counters.total(self.retired, (r.stats for r in replicas))
        ready = [s.replica for s in self.ready]
        return PoolScrape(
            at=now,
            counters=counters,
            running=float(sum(r.num_running for r in replicas)),
            waiting=float(sum(r.num_waiting for r in replicas) + len(self.pending)),
            kv_usage=sum(r.kv_usage for r in ready) / len(ready) if ready else None,
            ready=len(ready),
            scraped=len(replicas),
        )

    def observation(self, now: float) -> PoolObservation:
        serving = [s for s in self.live if s.draining_since is None]
        starting = tuple(s.requested_at for s in serving if s.ready_at > now)
        return PoolObservation(len(serving), len(self.ready), self.max_num_seqs, starting)

    def concurrency(self) -> float:
        return float(sum(s.replica.outstanding for s in self.ready) + len(self.pending))

    def close(self, end: float) -> None:
        """Finish in-flight requests, charge live replicas up to ``end``, fill the summaries."""
        for sim in list(self.live):
            sim.replica.advance(math.inf)
            self._collect(sim.replica)
            self._retire(sim, end)
        for request in self.pending:  # never served: no replica became ready before the end
            self.result.requests += 1
            self.outcomes.append((request.arrival, math.inf, False))
        _summarize(self)


def simulate(
    pools: Sequence[InferencePool],
    traces: Mapping[PoolKey, Trace],
    policy: Policy,
    *,
    quota: FleetQuota | None = None,
    initial_replicas: Mapping[PoolKey, int] | None = None,
    scrape_interval: float = 5.0,
    window: float = 60.0,
    horizon: float | None = None,
    progress: Callable[[float, float], None] | None = None,
    engine: EngineOptions | None = None,
) -> SimResult:
    """Replay each pool's trace under ``policy``; pools start with ``initial_replicas`` ready (default replicas.min).

    ``engine``: the simulator's own engines (``sim.engine``); None runs the planner's capacity profile.
    """
    started = time.perf_counter()
    runtimes = {pool_key(p): _Pool(p, quota, engine) for p in pools}
    for key, runtime in runtimes.items():
        count = (initial_replicas or {}).get(key, runtime.pool.spec.replicas.min)
        for _ in range(count):
            runtime.add(0.0, ready_now=True)
    arrivals = [(r.arrival, key, r) for key, trace in traces.items() for r in trace.requests]
    arrivals.sort(key=operator.itemgetter(0))
    end = horizon if horizon is not None else (arrivals[-1][0] if arrivals else 0.0)
    view = PromView(window=window)
    policy.start(pools, quota)
    series: list[dict[str, float | str]] = []
    dollars_so_far = dict.fromkeys(runtimes, 0.0)
    next_scrape, next_tick, next_record = 0.0, 0.0, 0.0
    becoming_ready: list[tuple[float, int, PoolKey, _SimReplica]] = []
    order = itertools.count()

    def timers_until(limit: float) -> float:
        """Run every timer due at or before ``limit``; returns when the next one is due."""
        nonlocal next_scrape, next_tick, next_record
        while True:
            ready_at = becoming_ready[0][0] if becoming_ready else math.inf
            now = min(next_scrape, next_tick, next_record, ready_at)
            if now > limit:
                return now
            if now == ready_at:
                _, _, key, sim = heapq.heappop(becoming_ready)
                runtimes[key].make_ready(sim)
                continue
            if now == next_scrape:
                for rt in runtimes.values():
                    rt.sync(now)
                view.scrape({k: rt.scrape(now) for k, rt in runtimes.items()})
                next_scrape += scrape_interval
            if now == next_tick:
                signals = view.snapshot(now)
                views = {k: PoolView(rt.pool, rt.observation(now), rt.concurrency()) for k, rt in runtimes.items()}
                for key, target in policy.decide(now, signals, views).items():
                    rt = runtimes[key]
                    if target.max_num_seqs is not None:
                        rt.max_num_seqs = target.max_num_seqs
                    for sim in rt.scale_to(now, target.replicas):
                        heapq.heappush(becoming_ready, (sim.ready_at, next(order), key, sim))
                next_tick += policy.interval
            if now == next_record:
                _record_row(series, view.snapshot(now), runtimes, now, dollars_so_far)
                if progress is not None:
                    progress(now, end)
                next_record += RECORD_INTERVAL

    due = 0.0
    for arrival, key, request in arrivals:
        if arrival > end:
            break
        if arrival >= due:
            due = timers_until(arrival)
        runtime = runtimes[key]
        runtime.arrivals_since_record += 1
        runtime.route(request)
    timers_until(end)
    for rt in runtimes.values():
        rt.close(end)
    return SimResult(policy.name, end, [rt.result for rt in runtimes.values()], series,
                     time.perf_counter() - started)


def _record_row(series: list[dict[str, float | str]], signals: SignalsSnapshot, runtimes: Mapping[PoolKey, _Pool],
                now: float, dollars_so_far: dict[PoolKey, float]) -> None:
    for key, rt in runtimes.items():
        replicas = len(rt.live)
        dollars_per_hour = replicas * rt.result.gpus_per_replica * rt.result.dollars_per_gpu_hour
        dollars_so_far[key] += dollars_per_hour * RECORD_INTERVAL / 3600
        rt.result.peak_replicas = max(rt.result.peak_replicas, replicas)
        sig = signals.for_pool(*key)
        series.append({
            "t": now, "pool": f"{key[0]}/{key[1]}", "tier": rt.result.tier,
            "arrivals_per_s": rt.arrivals_since_record / RECORD_INTERVAL,
            "ready": len(rt.ready), "replicas": replicas, "gpus": replicas * rt.result.gpus_per_replica,
            "dollars_per_hour": dollars_per_hour, "dollars": dollars_so_far[key],
            "ttft_p99": sig.ttft_p99.value if sig.ttft_p99.value is not None else math.nan,
            "itl_p99": sig.itl_p99.value if sig.itl_p99.value is not None else math.nan,
        })
        rt.arrivals_since_record = 0


def _summarize(rt: _Pool) -> None:
    """Fill the latency summaries and the per-minute windows of a pool's result."""
    result = rt.result
    ttfts = sorted(o[1] for o in rt.outcomes)
    if ttfts:
        result.ttft_p99 = ttfts[min(len(ttfts) - 1, math.ceil(0.99 * len(ttfts)) - 1)]
    if rt.e2e:
        e2e = sorted(rt.e2e)
        result.e2e_p99 = e2e[min(len(e2e) - 1, math.ceil(0.99 * len(e2e)) - 1)]
    result.itl_p99 = histogram_quantile(0.99, ITL_EDGES, rt.retired.itl)
    minutes: dict[int, list[bool]] = {}
    for arrival, _, good in rt.outcomes:
        minutes.setdefault(int(arrival // 60), []).append(good)
    result.windows = len(minutes)
    result.missed_windows = sorted(w for w, flags in minutes.items() if sum(flags) < 0.99 * len(flags))
