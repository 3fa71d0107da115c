"""One planner tick: signals + observations + memory -> replicas, batch limits and quota caps.

The same function drives the live operator and the simulator. Pure: no I/O, no clock (``now``).
Per pool: check the signals (signal_checks) and the clock (clock), measure (workload, cold start,
online correction, demand forecast), choose --max-num-seqs, size replicas against the SLOs; then the
quota grants replicas over all pools (or, while it is unavailable, each pool keeps its last grant);
then each pool gets its decision, reason and conditions, and its memory for the next tick.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ..api.conditions import METRICS_AVAILABLE, PROGRESSING, QUOTA_LIMITED, SLO_MET
from ..api.durations import format_duration
from ..api.v1alpha1 import FleetQuota, InferencePool, SloSpec
from ..errors import UserError
from ..signals.buckets import VLLM_BUCKETS
from ..signals.model import PoolSignals, Sample, SignalsSnapshot
from . import headroom
from .autoscale import (
    REPLICAS_LIMIT,
    ScaleInput,
    ScaleOutcome,
    backlogged,
    decide,
    ideal_replicas,
    planned_rate,
)
from .batching import ROLLOUT_SURGE, BatchingChoice, choose_max_num_seqs, hold_rollout
from .capacity import CapacityProfile, profile_for
from .clock import rebased
from .correction import corrected
from .forecast import TREND_WARMUP_S, Envelope, Holt, arrival_rate, spike_bounded
from .quota import QuotaGrant, QuotaRequest, QuotaUnavailable, allocate, held_grant
from .signal_checks import SIGNAL_CEILING, in_range, partial_scrape, remember_ready
from .slo import Correction, ReplicaModel, SloCapacity, TokenRates, Workload, slo_capacity
from .types import (
    ConditionVerdict,
    DecisionRecord,
    FleetState,
    PoolDecision,
    PoolKey,
    PoolMemory,
    PoolObservation,
    TickResult,
    TierUsage,
    pool_key,
)

STALE_AFTER_S = 90.0
"""A demand signal older than this is stale (three 30 s scrape intervals)."""
DEMAND_SIGNALS = ("request_rate", "waiting", "running")
COLD_START_ALPHA = 0.5
RATE_WINDOW_S = 60.0
"""The window of the rates the signals report (signals.promql.query's default)."""
LATENCY_WINDOW_S = 60.0
"""The p99s are histogram quantiles over this window: for that long after a queue, or after the ready
count changed, they still carry the waits or the load per replica of before, so corrections are learned
only once the pool was steady (no queue, the same ready replicas) for a whole window."""
CONTROLLED_MODES = ("Managed", "Shadow")


@dataclass(frozen=True)
class _Plan:
    """Everything decided for one pool before the quota."""

    pool: InferencePool
    key: PoolKey
    observation: PoolObservation
    memory: PoolMemory
    cold_start: float
    demand: float | None
    trend_warming: bool
    """Traffic is younger than TREND_WARMUP_S, so the forecast has no trend yet."""
    capacity: SloCapacity
    replica_rate: float
    batching: BatchingChoice
    scale: ScaleOutcome
    wanted: int
    missing: str
    """Why the demand signals are not usable ('' when they are): missing, stale, or a partial scrape."""
    partial: bool
    """``missing`` is a partial scrape."""
    out_of_range: str
    """Which signals were beyond any real value and clamped ('' when none)."""
    profile_note: str
    signals: PoolSignals


def tick(
    pools: Sequence[InferencePool],
    quota: FleetQuota | QuotaUnavailable | None,
    signals: SignalsSnapshot,
    observed: Mapping[PoolKey, PoolObservation],
    state: FleetState,
    now: float,
) -> TickResult:
    """Decide replicas, batch limits and quota caps for every pool; return them and the next state.

    ``quota`` is the FleetQuota the pools name, ``QuotaUnavailable`` when it is missing or invalid (each
    pool it governs keeps the replicas it last granted as its cap), or None when no quota governs them.
    """
    by_key = {s.key: s for s in signals.pools}
    plans = [
        _plan(pool, by_key.get(key) or signals.for_pool(*key), observed.get(key, PoolObservation(0, 0)),
              state.memory(key), now)
        for key, pool in sorted(((pool_key(p), p) for p in pools), key=lambda item: item[0])
    ]
    grants: Mapping[PoolKey, QuotaGrant] = {}
    tiers: tuple[TierUsage, ...] = ()
    over_budget = shortfall = None
    if isinstance(quota, FleetQuota):
        governed = [p for p in plans if p.pool.spec.quotaRef == quota.metadata.name]
        outcome = allocate(quota, [_request(p) for p in governed])
        grants, tiers, over_budget, shortfall = outcome.grants, outcome.tiers, outcome.over_budget, outcome.shortfall
    elif quota is not None:
        grants = {p.key: held_grant(quota, p.wanted, p.memory.quota_granted, p.observation.replicas,
                                    fixed=p.pool.spec.autoscaling.mode not in CONTROLLED_MODES)
                  for p in plans if p.pool.spec.quotaRef == quota.name}
    decisions = [_decide(p, grants.get(p.key), quota, now) for p in plans]
    memories = dict(state.pools)
    memories.update({d.key: m for d, m in decisions})
    return TickResult(tuple(d for d, _ in decisions), tiers, FleetState(memories), over_budget, shortfall)


def _missing(signals: PoolSignals, now: float) -> str:
    """Which demand signals are missing or stale, and why ('' when all are usable)."""
    problems = []
    for name in DEMAND_SIGNALS:
        sample = signals.sample(name)
        if not sample.ok:
            problems.append(f"{name}: {sample.missing or 'missing'}")
        elif sample.at is not None and now - sample.at > STALE_AFTER_S:
            problems.append(f"{name}: stale ({now - sample.at:.0f}s old, limit {STALE_AFTER_S:.0f}s)")
    return "; ".join(problems)


def _profile(pool: InferencePool) -> tuple[CapacityProfile, str]:
    """The pool's capacity profile; an unknown spec.capacity.profile falls back to the automatic one."""
    try:
        return profile_for(pool.spec), ""
    except UserError as error:
        assert pool.spec.capacity is not None
        spec = pool.spec.model_copy(update={"capacity": pool.spec.capacity.model_copy(update={"profile": None})})
        profile = profile_for(spec)
        return profile, f"{error}; using {profile.name}"


def _cold_start(pool: InferencePool, observation: PoolObservation, memory: PoolMemory, now: float) -> float | None:
    """Smoothed measured ready time: replicas that were starting last tick and are ready now."""
    still = set(observation.starting_since)
    became_ready = sorted(t for t in memory.starting_since if t not in still)
    newly_ready = observation.ready_replicas - (memory.ready_replicas or 0)
    samples = [now - t for t in became_ready[: max(newly_ready, 0)]]
    if not samples:
        return memory.cold_start_s
    sample = sum(samples) / len(samples)
    old = memory.cold_start_s
    return sample if old is None else old + COLD_START_ALPHA * (sample - old)


def _latency_slos(signals: PoolSignals, slo: SloSpec) -> tuple[tuple[str, Sample, float], ...]:
    """(name, observed p99, SLO) of inter-token latency and time to first token."""
    return (("ITL", signals.itl_p99, slo.itlP99), ("TTFT", signals.ttft_p99, slo.ttftP99))


def _running_history(memory: PoolMemory, signals: PoolSignals, now: float) -> tuple[tuple[float, float], ...]:
    """The running requests of the ticks within the last RATE_WINDOW_S, this one's included when measured."""
    kept = tuple((t, n) for t, n in memory.running if t >= now - RATE_WINDOW_S)
    running = signals.running.value
    return kept if running is None else (*kept, (now, running))


def _admitted(history: tuple[tuple[float, float], ...]) -> float:
    """Growth of the running requests per second over the rate window (slo.TokenRates), 0 if unknown."""
    if len(history) < 2:
        return 0.0
    (first, before), (last, after) = history[0], history[-1]
    return (after - before) / (last - first)


def _token_rates(memory: PoolMemory, signals: PoolSignals, now: float, admitted: float) -> TokenRates | None:
    """The smoothed token rates, updated with this tick's signals."""
    if memory.prompt_tokens_rate is None or memory.output_tokens_rate is None or memory.completions_rate is None \
            or memory.updated_at is None:
        return TokenRates.of(signals, admitted)
    last = TokenRates(memory.prompt_tokens_rate, memory.output_tokens_rate, memory.completions_rate)
    return last.updated(signals, now - memory.updated_at, admitted)


@dataclass(frozen=True)
class _Demand:
    """The arrival rate a tick plans for and the smoothed state behind it."""

    rate: float
    holt: Holt
    envelope: Envelope
    traffic_since: float | None
    warming: bool
    """Traffic is younger than TREND_WARMUP_S: no trend is learned yet."""


def _demand(memory: PoolMemory, rate: float, waiting: float, active: bool, cold_start: float, now: float,
            since: float | None) -> _Demand:
    """The spike-bounded arrivals or their forecast over the cold start (no trend in the first
    TREND_WARMUP_S of traffic), plus the waiting backlog drained over it."""
    arrivals = arrival_rate(rate, waiting, memory.waiting, since or 0.0)
    traffic_since = (memory.traffic_since if memory.traffic_since is not None else now) if active else None
    warming = traffic_since is not None and now - traffic_since < TREND_WARMUP_S
    holt = Holt(arrivals, 0.0)
    if memory.demand_level is not None and since is not None:
        holt = Holt(memory.demand_level, memory.demand_trend, memory.demand_trend_filled).update(
            arrivals, since, learn_trend=traffic_since is not None and not warming)
    demand = max(spike_bounded(arrivals, holt), holt.forecast(cold_start)) + waiting / cold_start
    envelope = Envelope(demand, demand)
    if memory.demand_peak is not None and memory.demand_mean is not None and since is not None:
        envelope = Envelope(memory.demand_peak, memory.demand_mean).update(demand, since)
    return _Demand(demand, holt, envelope, traffic_since, warming)


def _plan(pool: InferencePool, signals: PoolSignals, observation: PoolObservation,
          memory: PoolMemory, now: float) -> _Plan:
    spec = pool.spec
    key = pool_key(pool)
    memory, clock_stepped = rebased(memory, now)
    signals, out_of_range = in_range(signals)
    ready_seen = remember_ready(memory.ready_seen, now, max(observation.ready_replicas, 0))
    partial = partial_scrape(signals.scraped_replicas, ready_seen, observation.ready_replicas)
    missing = _missing(signals, now) or partial
    measured_cold = memory.cold_start_s if clock_stepped else _cold_start(pool, observation, memory, now)
    cold_start = measured_cold or spec.autoscaling.coldStart
    profile, profile_note = _profile(pool)
    rate, waiting, running = (signals.request_rate.value, signals.waiting.value, signals.running.value)
    ready = max(observation.ready_replicas, 0)
    unsteady_at = memory.unsteady_at
    if not missing and (ready == 0 or backlogged(waiting or 0.0, ready) or ready != memory.ready_replicas):
        unsteady_at = now
    steady = not missing and (unsteady_at is None or now - unsteady_at >= LATENCY_WINDOW_S)
    context = spec.model.maxContextTokens
    running_history = _running_history(memory, signals, now)
    admitted = _admitted(running_history)
    token_rates = _token_rates(memory, signals, now, admitted)
    smoothed = None if token_rates is None else token_rates.workload(context)
    current = Workload.measured(signals, context, admitted)
    model = ReplicaModel(
        profile,
        Correction(memory.step_correction, memory.prefill_correction),
        current.longer(smoothed) if current else smoothed or Workload.default(context),
        spec.batching.maxNumBatchedTokens,
    )
    planned: _Demand | None = None
    active = False
    slo = spec.autoscaling.slo
    slo_headroom = memory.slo_headroom
    if not missing:
        assert rate is not None and waiting is not None and running is not None
        active = rate > 1e-9 or waiting > 0 or running > 0
        if steady:
            itl = signals.itl_p99.value if signals.itl_p99.ok else None
            ttft = signals.ttft_p99.value if signals.ttft_p99.ok else None
            buckets = VLLM_BUCKETS if spec.engine.kind == "vllm" else None
            model = replace(model, correction=corrected(model, itl, ttft, running / ready, rate / ready, buckets))
        since = None if memory.updated_at is None else now - memory.updated_at
        ratios = [sample.value / target for _, sample, target in _latency_slos(signals, slo)
                  if sample.ok and sample.value is not None]
        settled = memory.last_scale_up is None or now - memory.last_scale_up >= cold_start + LATENCY_WINDOW_S
        slo_headroom = headroom.updated(slo_headroom, ratios if active else [], since or 0.0, settled)
        planned = _demand(memory, rate, waiting, active, cold_start, now, since)
    running_seqs = observation.max_num_seqs if observation.replicas > 0 else None
    demand = planned.rate if planned else None
    batching = choose_max_num_seqs(
        spec, model, running_seqs, demand, observation.replicas, cold_start, memory.last_rollout, now, slo_headroom
    )
    capacity = slo_capacity(model, batching.max_num_seqs, slo.itlP99, slo.ttftP99)
    replica_rate = planned_rate(capacity.rate, spec, slo_headroom)
    last_request = now if active or memory.last_request_at is None else memory.last_request_at
    scale = decide(spec, ScaleInput(
        current=observation.replicas,
        starting=len(observation.starting_since),
        demand=demand,
        backlog=waiting or 0.0,
        replica_rate=replica_rate,
        cold_start=cold_start,
        burstiness=planned.envelope.burstiness if planned else 1.0,
        idle_for=None if active or missing else now - last_request,
        needs=memory.needs,
        now=now,
        why_missing=missing,
    ))
    mode = spec.autoscaling.mode
    wanted = scale.wanted if mode in CONTROLLED_MODES else _external_count(pool, observation)
    new_memory = replace(
        memory,
        updated_at=now,
        demand_level=planned.holt.level if planned else memory.demand_level,
        demand_trend=planned.holt.trend if planned else memory.demand_trend,
        demand_trend_filled=planned.holt.filled if planned else memory.demand_trend_filled,
        demand_peak=planned.envelope.peak if planned else memory.demand_peak,
        demand_mean=planned.envelope.mean if planned else memory.demand_mean,
        step_correction=model.correction.step,
        prefill_correction=model.correction.prefill,
        slo_headroom=slo_headroom,
        prompt_tokens_rate=None if token_rates is None else token_rates.prompt,
        output_tokens_rate=None if token_rates is None else token_rates.output,
        completions_rate=None if token_rates is None else token_rates.requests,
        needs=scale.needs,
        last_request_at=last_request if not missing else memory.last_request_at,
        traffic_since=planned.traffic_since if planned else memory.traffic_since,
        cold_start_s=measured_cold,
        starting_since=observation.starting_since,
        ready_replicas=observation.ready_replicas,
        waiting=waiting if not missing else memory.waiting,
        running=running_history,
        unsteady_at=unsteady_at,
        ready_seen=ready_seen,
    )
    return _Plan(pool, key, observation, new_memory, cold_start, demand, bool(planned and planned.warming), capacity,
                 replica_rate, batching, scale, wanted, missing, bool(partial) and missing == partial, out_of_range,
                 profile_note, signals)


def _external_count(pool: InferencePool, observation: PoolObservation) -> int:
    count = pool.spec.replicas.count
    return observation.replicas if count is None else count


def _request(plan: _Plan) -> QuotaRequest:
    topology = plan.pool.spec.topology
    return QuotaRequest(
        key=plan.key,
        tier=plan.pool.spec.tier,
        replicas=plan.wanted,
        current=plan.observation.replicas,
        gpus_per_replica=topology.gpus,
        gpu_type=topology.gpu.type,
        fixed=plan.pool.spec.autoscaling.mode not in CONTROLLED_MODES,
        floor=plan.observation.replicas if plan.missing else 0,
        minimum=plan.pool.spec.replicas.min,
        surge=ROLLOUT_SURGE if plan.batching.rollout or plan.observation.rolling_out else 0,
        rolling=plan.observation.rolling_out,
    )


def _decide(plan: _Plan, grant: QuotaGrant | None, quota: FleetQuota | QuotaUnavailable | None,
            now: float) -> tuple[PoolDecision, PoolMemory]:
    spec = plan.pool.spec
    mode = spec.autoscaling.mode
    controlled = mode in CONTROLLED_MODES
    current = plan.observation.replicas
    desired = plan.wanted
    if grant is not None and controlled:
        desired = min(desired, grant.granted)
    quota_reason = grant.reason if grant is not None else _ungoverned(spec.quotaRef, quota)
    applied = mode == "Managed"
    if (grant is not None and grant.surge_refused and plan.batching.rollout
            and plan.observation.max_num_seqs is not None):
        plan = replace(plan, batching=hold_rollout(plan.batching, plan.observation.max_num_seqs,
                                                   f"the quota has no room for the rollout's surge replica "
                                                   f"({grant.surge_refused})"))
    records = [_scale_record(plan, desired, quota_reason)]
    if plan.batching.record is not None:
        records.append(plan.batching.record)
    price = (quota.spec.price(spec.topology.gpu.type) if isinstance(quota, FleetQuota) else None) or 0.0
    gpus = desired * spec.topology.gpus
    memory = plan.memory
    if grant is not None and controlled and not grant.held:
        memory = replace(memory, quota_granted=grant.granted)
    if applied:
        memory = replace(
            memory,
            last_scale_up=now if desired > current else memory.last_scale_up,
            last_scale_down=now if desired < current else memory.last_scale_down,
            max_num_seqs=plan.batching.max_num_seqs,
            last_rollout=now if plan.batching.rollout else memory.last_rollout,
        )
    decision = PoolDecision(
        key=plan.key,
        mode=mode,
        tier=spec.tier,
        current_replicas=current,
        desired_replicas=desired,
        applied=applied,
        max_num_seqs=plan.batching.max_num_seqs,
        recommended_max_num_seqs=plan.batching.recommended,
        rollout_max_num_seqs=plan.batching.rollout,
        quota_cap=grant.cap if grant is not None else None,
        quota_reason=quota_reason,
        gpus=gpus,
        dollars_per_hour=gpus * price,
        replica_rate=plan.replica_rate,
        forecast_rate=plan.demand,
        records=tuple(records),
        conditions=_conditions(plan, grant, quota_reason, desired),
    )
    return decision, memory


def _ungoverned(quota_ref: str, quota: FleetQuota | QuotaUnavailable | None) -> str:
    if quota is None:
        return "capped by nothing (no FleetQuota given)"
    name = quota.metadata.name if isinstance(quota, FleetQuota) else quota.name
    return f"capped by nothing (quotaRef {quota_ref!r} is not FleetQuota {name!r})"


def _sizing(plan: _Plan) -> str:
    """'forecast 41.0 req/s over the 120s cold start needs 6 replicas at ITL p99 60ms (6.9 req/s per replica)'."""
    assert plan.demand is not None
    needed = ideal_replicas(plan.demand, plan.replica_rate)
    if needed >= REPLICAS_LIMIT:
        return (f"forecast {plan.demand:.4g} req/s is beyond any replica count "
                f"({plan.replica_rate:.3g} req/s per replica): replicas.max {plan.pool.spec.replicas.max}")
    return (
        f"forecast {plan.demand:.1f} req/s"
        + (f" (no trend in the first {TREND_WARMUP_S:g}s of traffic)" if plan.trend_warming else "")
        + f" over the {plan.cold_start:g}s cold start needs {needed} "
        f"replica{'' if needed == 1 else 's'} at ITL p99 {format_duration(plan.pool.spec.autoscaling.slo.itlP99)} "
        f"({plan.replica_rate:.1f} req/s per replica"
        + (f", headroom x{plan.memory.slo_headroom:.2f} after p99s above the SLO" if plan.memory.slo_headroom > 1.005
           else "") + ")"
    )


def _scale_record(plan: _Plan, desired: int, quota_reason: str) -> DecisionRecord:
    spec = plan.pool.spec
    current = plan.observation.replicas
    starting = len(plan.observation.starting_since)
    now_text = f"{current} ({starting} still starting)" if starting else f"{current}"
    if spec.autoscaling.mode not in CONTROLLED_MODES:
        owner = "HPA/KEDA own /scale" if spec.autoscaling.mode == "External" else "replicas.count rules"
        would = f"; the planner would want {plan.scale.wanted}" if plan.demand is not None else ""
        reason = f"hold {now_text}: mode {spec.autoscaling.mode}, {owner} (desired {desired}){would}"
        return DecisionRecord("Hold", current, desired, reason)
    parts = [plan.scale.explanation] if plan.demand is None else [_sizing(plan), plan.scale.explanation]
    if plan.out_of_range:
        parts.insert(0, f"{plan.out_of_range}: clamped to {SIGNAL_CEILING:g}, beyond which the pool is sized at "
                        f"replicas.max {spec.replicas.max}")
    if desired < plan.wanted and desired < spec.replicas.min:
        parts.append(f"below replicas.min {spec.replicas.min} because of the quota")
    parts.append(quota_reason)
    detail = "; ".join(p for p in parts if p)
    if desired == current:
        return DecisionRecord("Hold", current, desired, f"hold {now_text}: {detail}")
    action = "ScaleUp" if desired > current else "ScaleDown"
    return DecisionRecord(action, current, desired, f"scale {now_text} -> {desired}: {detail}")


def _conditions(plan: _Plan, grant: QuotaGrant | None, quota_reason: str,
                desired: int) -> tuple[ConditionVerdict, ...]:
    spec = plan.pool.spec
    if plan.partial:
        metrics = ConditionVerdict(METRICS_AVAILABLE, "False", "PartialScrape",
                                   f"{plan.missing}; holding replicas (never scaling down on a partial scrape)")
    elif plan.missing:
        metrics = ConditionVerdict(METRICS_AVAILABLE, "False", "SignalsMissing",
                                   f"{plan.missing}; holding replicas (never scaling down without signals)")
    elif plan.out_of_range:
        metrics = ConditionVerdict(METRICS_AVAILABLE, "False", "SignalOutOfRange",
                                   f"{plan.out_of_range}; clamped to {SIGNAL_CEILING:g}")
    else:
        metrics = ConditionVerdict(METRICS_AVAILABLE, "True", "SignalsFresh",
                                   "request rate, waiting and running are fresh")
    limited = grant is not None and grant.limited
    if grant is not None and grant.held:
        quota_status = "QuotaUnavailable"
    else:
        quota_status = "TierBudgetExhausted" if limited else ("WithinBudget" if grant is not None else "NoQuota")
    quota_condition = ConditionVerdict(QUOTA_LIMITED, "True" if limited else "False", quota_status,
                                       f"tier {spec.tier}: {quota_reason}")
    starting = len(plan.observation.starting_since)
    current = plan.observation.replicas
    if desired != current:
        progressing = ConditionVerdict(PROGRESSING, "True", "Scaling", f"replicas {current} -> {desired}")
    elif starting:
        progressing = ConditionVerdict(PROGRESSING, "True", "ReplicasStarting", f"{starting} replicas starting")
    elif plan.batching.rollout:
        progressing = ConditionVerdict(PROGRESSING, "True", "RollingOut",
                                       f"max-num-seqs -> {plan.batching.max_num_seqs}")
    else:
        progressing = ConditionVerdict(PROGRESSING, "False", "Stable", f"{current} replicas, nothing to do")
    return (metrics, _slo_condition(plan), quota_condition, progressing)


def _slo_condition(plan: _Plan) -> ConditionVerdict:
    slo = plan.pool.spec.autoscaling.slo
    note = f"; {plan.capacity.problem}" if plan.capacity.problem else ""
    note += f"; {plan.profile_note}" if plan.profile_note else ""
    latencies = _latency_slos(plan.signals, slo)
    observed = [
        (name, sample.value, target)
        for name, sample, target in latencies
        if sample.ok and sample.value is not None and math.isfinite(sample.value)
    ]
    if not observed:
        why = "; ".join(f"{name} p99: {sample.missing or 'not a finite number'}" for name, sample, _ in latencies)
        return ConditionVerdict(SLO_MET, "Unknown", "NoLatencySignals", f"no p99 latency observed ({why}){note}")
    broken = [(n, v, t) for n, v, t in observed if v > t]
    text = ", ".join(f"{n} p99 {format_duration(round(v, 3))} (SLO {format_duration(t)})" for n, v, t in observed)
    if broken:
        reason = "And".join(n for n, _, _ in broken) + "AboveSLO"
        return ConditionVerdict(SLO_MET, "False", reason, text + note)
    return ConditionVerdict(SLO_MET, "True", "WithinSLO", text + note)
