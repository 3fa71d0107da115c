"""One planner tick: signals + observations + memory -> replicas, batch limits and quota caps.

The same function drives the live operator and the simulator. Pure: no I/O, no clock (``now``).
Per pool: check the signals (signal_checks) and the clock (clock), calibrate the profile to a declared
load test (load_test), measure (workload, cold start, online correction, demand forecast), choose
--max-num-seqs, size replicas against the SLOs; then the
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
from .autoscale import (
    REPLICAS_LIMIT,
    ScaleInput,
    ScaleOutcome,
    backlogged,
    decide,
    ideal_replicas,
    planned_rate,
)
from .batching import ROLLOUT_SURGE, BatchingChoice, RolloutHistory, choose_max_num_seqs, hold_rollout
from .capacity import CapacityProfile, profile_for
from .clock import rebased
from .correction import OnlineCorrection
from .forecast import Demand, DemandForecast
from .headroom import SloHeadroom
from .load_test import calibrated, climb_margin
from .memory import FleetState, PoolMemory
from .quota import QuotaGrant, QuotaRequest, QuotaUnavailable, allocate, held_grant
from .records import DecisionRecord
from .signal_checks import SIGNAL_CEILING, in_range, partial_scrape, remember_ready
from .slo import ReplicaModel, SloCapacity, slo_capacity
from .tuning import DEFAULT_TUNING, PlannerTuning
from .types import (
    ConditionVerdict,
    PoolDecision,
    PoolKey,
    PoolObservation,
    SizingTrace,
    TickResult,
    TierUsage,
    pool_key,
)

DEMAND_SIGNALS = ("request_rate", "waiting", "running")
CONTROLLED_MODES = ("Managed", "Shadow")


@dataclass(frozen=True)
class _Plan:
    """Everything decided for one pool before the quota."""

    pool: InferencePool
    key: PoolKey
    observation: PoolObservation
    memory: PoolMemory
    model: ReplicaModel
    horizon: float
    """Seconds ahead the plan looks: the measured cold start, else spec.autoscaling.coldStart."""
    demand: Demand | None
    """None when the demand signals are not usable (see ``missing``)."""
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
    load_test_factor: float | None
    """Factor on step and prefill time that matches spec.capacity.loadTest (None: no load test)."""
    climb_margin: float
    """Divisor of the planned rate per replica for demand that climbs during a cold start (1: none)."""
    signals: PoolSignals
    tuning: PlannerTuning


def tick(
    pools: Sequence[InferencePool],
    quota: FleetQuota | QuotaUnavailable | None,
    signals: SignalsSnapshot,
    observed: Mapping[PoolKey, PoolObservation],
    state: FleetState,
    now: float,
    tuning: PlannerTuning = DEFAULT_TUNING,
) -> TickResult:
    """Decide replicas, batch limits and quota caps for every pool; return them and the next state.

    ``quota`` is the FleetQuota the pools name, ``QuotaUnavailable`` when it is missing or invalid (each
    pool it governs keeps the replicas it last granted as its cap), or None when no quota governs them.
    """
    by_key = {s.key: s for s in signals.pools}
    plans = [
        _plan(pool, by_key.get(key) or signals.for_pool(*key), observed.get(key, PoolObservation(0, 0)),
              state.memory(key), now, tuning)
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


def _missing(signals: PoolSignals, now: float, stale_after: float) -> str:
    """Which demand signals are missing or stale, and why ('' when all are usable)."""
    problems = []
    for name in DEMAND_SIGNALS:
        sample = signals.sample(name)
        if not sample.ok:
            problems.append(f"{name}: {sample.missing or 'missing'}")
        elif sample.at is not None and now - sample.at > stale_after:
            problems.append(f"{name}: stale ({now - sample.at:.0f}s old, limit {stale_after:.0f}s)")
    return "; ".join(problems)


def _profile(pool: InferencePool, itl_margin: float) -> tuple[CapacityProfile, float | None, str]:
    """The pool's capacity profile, calibrated to spec.capacity.loadTest when the pool declares one (with the
    calibration factor, else None), and what went wrong ('' when nothing did): an unknown
    spec.capacity.profile falls back to the automatic one, a load test beyond the profile is clamped."""
    spec, note = pool.spec, ""
    try:
        profile = profile_for(spec)
    except UserError as error:
        assert spec.capacity is not None
        spec = spec.model_copy(update={"capacity": spec.capacity.model_copy(update={"profile": None})})
        profile = profile_for(spec)
        note = f"{error}; using {profile.name}"
    calibration = calibrated(profile, spec, itl_margin)
    if calibration is None:
        return profile, None, note
    return calibration.profile, calibration.factor, "; ".join(n for n in (note, calibration.problem) if n)


def _latency_slos(signals: PoolSignals, slo: SloSpec) -> tuple[tuple[str, Sample, float], ...]:
    """(name, observed p99, SLO) of inter-token latency and time to first token."""
    return (("ITL", signals.itl_p99, slo.itlP99), ("TTFT", signals.ttft_p99, slo.ttftP99))


@dataclass(frozen=True)
class _Learned:
    """The estimators that learn from fresh demand signals, after this tick, and the demand they give."""

    correction: OnlineCorrection
    headroom: SloHeadroom
    forecast: DemandForecast
    demand: Demand | None
    active: bool
    """Requests arrived, waited or ran this tick."""


def _learn(pool: InferencePool, memory: PoolMemory, model: ReplicaModel, signals: PoolSignals, ready: int,
           admitted: float, horizon: float, now: float, dt: float | None, tuning: PlannerTuning) -> _Learned:
    """Correction (from a steady pool's p99s), SLO headroom (once the last scale-up settled) and demand
    forecast updated with fresh demand signals."""
    spec = pool.spec
    rate, waiting, running = signals.request_rate.value, signals.waiting.value, signals.running.value
    assert rate is not None and waiting is not None and running is not None
    active = rate > 1e-9 or waiting > 0 or running > 0
    unsteady = ready == 0 or backlogged(waiting, ready, tuning.scale) or ready != memory.cold_start.ready_replicas
    correction = memory.correction.observed(
        model, unsteady, now, signals.itl_p99.value if signals.itl_p99.ok else None,
        signals.ttft_p99.value if signals.ttft_p99.ok else None, running / max(ready, 1), rate / max(ready, 1),
        tuning.correction, tuning.signals.latency_window_s, VLLM_BUCKETS if spec.engine.kind == "vllm" else None)
    ratios = [sample.value / target for _, sample, target in _latency_slos(signals, spec.autoscaling.slo)
              if sample.ok and sample.value is not None]
    last_up = memory.scale.last_scale_up
    settled = last_up is None or now - last_up >= horizon + tuning.signals.latency_window_s
    headroom = memory.headroom.observed(ratios if active else [], dt or 0.0, settled, tuning.headroom)
    forecast, demand = memory.demand.observed(rate, admitted, waiting, active, horizon, now, dt, tuning.forecast)
    return _Learned(correction, headroom, forecast, demand, active)


def _plan(pool: InferencePool, signals: PoolSignals, observation: PoolObservation,
          memory: PoolMemory, now: float, tuning: PlannerTuning) -> _Plan:
    """One pool's estimators updated with this tick's signals, its batch limit and its replicas before the quota."""
    spec = pool.spec
    memory, clock_stepped = rebased(memory, now, tuning.signals)
    dt = None if memory.updated_at is None else now - memory.updated_at
    signals, out_of_range = in_range(signals)
    ready = max(observation.ready_replicas, 0)
    ready_seen = remember_ready(memory.ready_seen, now, ready, tuning.signals.scrape_grace_s)
    partial = partial_scrape(signals.scraped_replicas, ready_seen, observation.ready_replicas)
    missing = _missing(signals, now, tuning.signals.stale_after_s) or partial
    cold_start = memory.cold_start.observed(observation, now, clock_stepped, tuning.signals)
    horizon = cold_start.seconds or spec.autoscaling.coldStart
    profile, load_test_factor, profile_note = _profile(pool, tuning.batching.itl_margin)
    climb = 1.0 if load_test_factor is None else climb_margin(horizon, tuning.scale.climb_margin_per_minute)
    shape, workload = memory.shape.observed(signals, now, dt, spec.model.maxContextTokens, tuning.shape)
    model = ReplicaModel(profile, memory.correction.multipliers, workload, spec.batching.maxNumBatchedTokens)
    learned = _Learned(memory.correction, memory.headroom, memory.demand, None, False)
    if not missing:
        learned = _learn(pool, memory, model, signals, ready, shape.admitted, horizon, now, dt, tuning)
        model = replace(model, correction=learned.correction.multipliers)
    correction, headroom, demand, active = learned.correction, learned.headroom, learned.demand, learned.active
    running_seqs = observation.max_num_seqs if observation.replicas > 0 else None
    margin = headroom.value * climb
    batching = choose_max_num_seqs(spec, model, running_seqs, demand.rate if demand else None, observation.replicas,
                                   horizon, memory.rollout.last_rollout, now, margin, tuning.batching)
    slo = spec.autoscaling.slo
    capacity = slo_capacity(model, batching.max_num_seqs, slo.itlP99, slo.ttftP99, tuning.batching.itl_margin)
    replica_rate = planned_rate(capacity.rate, spec, margin)
    history = memory.scale
    last_request = now if active or history.last_request_at is None else history.last_request_at
    scale = decide(spec, ScaleInput(
        current=observation.replicas,
        starting=len(observation.starting_since),
        demand=demand.rate if demand else None,
        backlog=signals.waiting.value or 0.0,
        replica_rate=replica_rate,
        cold_start=horizon,
        burstiness=demand.burstiness if demand else 1.0,
        idle_for=None if active or missing else now - last_request,
        gives_back_starting=load_test_factor is not None,
        needs=history.needs,
        now=now,
        why_missing=missing,
    ), tuning.scale)
    mode = spec.autoscaling.mode
    wanted = scale.wanted if mode in CONTROLLED_MODES else _external_count(pool, observation)
    new_memory = replace(
        memory,
        updated_at=now,
        demand=learned.forecast,
        shape=shape,
        correction=correction,
        headroom=headroom,
        scale=replace(history, needs=scale.needs,
                      last_request_at=last_request if not missing else history.last_request_at),
        cold_start=cold_start,
        ready_seen=ready_seen,
    )
    return _Plan(pool, pool_key(pool), observation, new_memory, model, horizon, demand, capacity, replica_rate,
                 batching, scale, wanted, missing, bool(partial) and missing == partial, out_of_range, profile_note,
                 load_test_factor, climb, signals, tuning)


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
    sizing = _trace(plan, grant, desired)
    records = [_scale_record(plan, sizing, quota_reason)]
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
            scale=replace(memory.scale, last_scale_up=now if desired > current else memory.scale.last_scale_up),
            rollout=RolloutHistory(plan.batching.max_num_seqs,
                                   now if plan.batching.rollout else memory.rollout.last_rollout),
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
        sizing=sizing,
        records=tuple(records),
        conditions=_conditions(plan, grant, quota_reason, desired),
    )
    return decision, memory


def _trace(plan: _Plan, grant: QuotaGrant | None, desired: int) -> SizingTrace:
    """The sizing trace of one pool's decision."""
    demand, model = plan.demand, plan.model
    return SizingTrace(
        demand=demand.rate if demand else None,
        arrivals=demand.arrivals if demand else None,
        forecast=demand.forecast if demand else None,
        backlog=demand.backlog if demand else None,
        horizon=plan.horizon,
        trend_warming=bool(demand and demand.trend_warming),
        burstiness=demand.burstiness if demand else 1.0,
        prompt_tokens=model.workload.prompt_tokens,
        output_tokens=model.workload.output_tokens,
        step_multiplier=model.correction.step,
        prefill_multiplier=model.correction.prefill,
        batch=plan.capacity.batch,
        slo_rate=plan.capacity.rate,
        target_utilization=plan.pool.spec.autoscaling.behavior.targetUtilization,
        headroom=plan.memory.headroom.value,
        load_test_factor=plan.load_test_factor,
        climb_margin=plan.climb_margin,
        replica_rate=plan.replica_rate,
        needed=ideal_replicas(demand.rate, plan.replica_rate) if demand else None,
        wanted=plan.wanted,
        quota_cap=grant.cap if grant is not None else None,
        desired=desired,
    )


def _ungoverned(quota_ref: str, quota: FleetQuota | QuotaUnavailable | None) -> str:
    if quota is None:
        return "capped by nothing (no FleetQuota given)"
    name = quota.metadata.name if isinstance(quota, FleetQuota) else quota.name
    return f"capped by nothing (quotaRef {quota_ref!r} is not FleetQuota {name!r})"


def _sizing(plan: _Plan, trace: SizingTrace) -> str:
    """'forecast 41.0 req/s over the 120s cold start needs 6 replicas at ITL p99 60ms (6.9 req/s per replica)'."""
    assert trace.demand is not None and trace.needed is not None
    if trace.needed >= REPLICAS_LIMIT:
        return (f"forecast {trace.demand:.4g} req/s is beyond any replica count "
                f"({trace.replica_rate:.3g} req/s per replica): replicas.max {plan.pool.spec.replicas.max}")
    warmup = plan.tuning.forecast.trend_warmup_s
    return (
        f"forecast {trace.demand:.1f} req/s"
        + (f" (no trend in the first {warmup:g}s of traffic)" if trace.trend_warming else "")
        + f" over the {trace.horizon:g}s cold start needs {trace.needed} "
        f"replica{'' if trace.needed == 1 else 's'} at ITL p99 {format_duration(plan.pool.spec.autoscaling.slo.itlP99)} "
        f"({trace.replica_rate:.1f} req/s per replica"
        + (f", load test x{trace.load_test_factor:.2f} step and prefill time"
           if trace.load_test_factor is not None else "")
        + (f", climb margin x{trace.climb_margin:.2f} for the cold start" if trace.climb_margin > 1.005 else "")
        + (f", headroom x{trace.headroom:.2f} after p99s above the SLO" if trace.headroom > 1.005 else "") + ")"
    )


def _scale_record(plan: _Plan, trace: SizingTrace, quota_reason: str) -> DecisionRecord:
    spec = plan.pool.spec
    desired = trace.desired
    current = plan.observation.replicas
    starting = len(plan.observation.starting_since)
    now_text = f"{current} ({starting} still starting)" if starting else f"{current}"
    if spec.autoscaling.mode not in CONTROLLED_MODES:
        owner = "HPA/KEDA own /scale" if spec.autoscaling.mode == "External" else "replicas.count rules"
        would = f"; the planner would want {plan.scale.wanted}" if trace.demand is not None else ""
        reason = f"hold {now_text}: mode {spec.autoscaling.mode}, {owner} (desired {desired}){would}"
        return DecisionRecord("Hold", current, desired, reason)
    parts = [plan.scale.explanation] if trace.demand is None else [_sizing(plan, trace), plan.scale.explanation]
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
