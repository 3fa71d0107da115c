"""The fleet tick: one loop for every pool. Observe, read ONE signals snapshot, plan, act, report.

Per tick: workloads (from the watch cache) -> observations; one Prometheus snapshot for all pools;
``planner.controller.tick`` per FleetQuota (pools grouped by quotaRef); then per pool: Managed
applies replicas and max-num-seqs (server-side apply of the rendered workload), Shadow applies
nothing, External/Off apply replicas.count; status via /status only when it changed; an Event for
every applied action. A failure is isolated to its pool: logged, reported on that pool (condition
Reconciled False and a Warning Event) and retried next tick, while the other pools go on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from .. import observability
from ..api.v1alpha1 import FleetQuota, FleetQuotaStatus, InferencePool
from ..kube.client import KubeError
from ..planner.controller import tick
from ..planner.memory import FleetState, PoolMemory, decode_memory, encode_memory, memory_time
from ..planner.quota import QuotaUnavailable
from ..planner.types import PoolDecision, PoolKey, PoolObservation
from ..render.workloads import workload_kind
from ..signals.model import SIGNAL_NAMES, PoolSignals, Sample, SignalsSnapshot
from ..signals.status import rfc3339
from .children import drift
from .drain import prepare_scale_in
from .runtime import Runtime, as_shadow, parse_pool, parse_quota, paused, pool_key, pool_ref, spec_accepted
from .spec import POOL_STATUS_FIELDS, reconcile_spec
from .status import ACTIONS, invalid_quota, not_reconciled, pool_status, quota_status, resumed, status_patch
from .workloads import Workload, newest, observation, render, workload_of

QUOTA_STATUS_FIELDS = tuple(f.alias or name for name, f in FleetQuotaStatus.model_fields.items())
NO_PROMETHEUS = "no Prometheus configured (PROMETHEUS_URL is not set)"

logger = logging.getLogger(__name__)


async def run_forever(runtime: Runtime, pools: Any, quotas: Any, workloads: Any, children: Any) -> None:
    """Tick every ``settings.tick_interval`` seconds over the live kopf indices until cancelled."""
    interval = runtime.settings.tick_interval
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        ok = True
        try:
            with observability.TICK_SECONDS.time():
                await fleet_tick(runtime, _values(pools), _values(quotas), _workloads(workloads), time.time(),
                                 children)
        except Exception:  # the loop must survive anything; the next tick retries
            ok = False
            observability.TICK_FAILURES.inc()
            logger.exception("Fleet tick failed")
        observability.HEALTH.tick_done(ok)
        await asyncio.sleep(max(0.0, interval - (loop.time() - started)))


def _values(index: Any) -> list[dict[str, Any]]:
    """The bodies in a kopf index of {key: body}."""
    return [body for key in list(index) for body in index.get(key, ())]


def _workloads(index: Any) -> dict[PoolKey, Workload]:
    found: dict[PoolKey, Workload] = {}
    for key in list(index):
        candidate = newest(*index.get(key, ()))
        if candidate is not None:
            found[key] = candidate
    return found


async def snapshot(runtime: Runtime, keys: Iterable[PoolKey], now: float) -> SignalsSnapshot:
    """ONE signals snapshot for every pool (never raises: an outage makes signals missing)."""
    keys = sorted(keys)
    if runtime.source is None:
        missing = {name: Sample.absent(NO_PROMETHEUS) for name in SIGNAL_NAMES}
        return SignalsSnapshot(at=now, pools=[PoolSignals(namespace=n, pool=p, at=now, **missing) for n, p in keys])
    return await runtime.source.snapshot(keys, now)


async def fleet_tick(runtime: Runtime, pool_bodies: list[dict[str, Any]], quota_bodies: list[dict[str, Any]],
                     workloads: Mapping[PoolKey, Workload], now: float, children: Any = None) -> None:
    """One tick over every pool and quota; ``children`` (a {pool key: [Child]} index) enables repair."""
    stamp = rfc3339(now)
    live_keys = {pool_key(b) for b in pool_bodies}
    runtime.forget(live_keys)
    observability.POOLS.set(len(live_keys))
    pools: dict[PoolKey, tuple[InferencePool, dict[str, Any]]] = {}
    for body in pool_bodies:
        pool, _ = parse_pool(body)
        if pool is not None and spec_accepted(runtime.status_of(pool_ref(body), body), pool.metadata.generation):
            pools[pool_key(body)] = (as_shadow(pool) if paused(body) else pool, body)
    quotas: dict[str, tuple[FleetQuota, dict[str, Any]]] = {}
    invalid: dict[str, str] = {}
    for body in quota_bodies:
        quota, problems = parse_quota(body)
        if quota is not None:
            quotas[quota.metadata.name] = (quota, body)
            continue
        invalid[str((body.get("metadata") or {}).get("name"))] = problems
        generation = (body.get("metadata") or {}).get("generation")
        ref = pool_ref(body)
        await _guarded(runtime.write_status(ref, body, invalid_quota(runtime.status_of(ref, body), problems,
                                                                     generation, stamp), QUOTA_STATUS_FIELDS))

    restored = {k: m for k, (_, body) in pools.items() if k not in runtime.state.pools
                and (m := decode_memory((runtime.status_of(pool_ref(body), body) or {}).get("plannerMemory")))}
    if restored:
        runtime.state = FleetState({**runtime.state.pools, **restored})
    if children is not None:
        specs = {name: quota for name, (quota, _) in quotas.items()}
        await _bounded([_isolated(runtime, body, _repair(runtime, key, body, specs, children),
                                  stamp) for key, (_, body) in pools.items() if not paused(body)])
    live = {k: _of_kind(newest(workloads.get(k), runtime.applied.get(k)), pool) for k, (pool, _) in pools.items()}
    observed = {k: observation(live[k], runtime.state.memory(k), now) for k in pools}
    signals = await snapshot(runtime, pools, now)
    state = FleetState({k: m for k, m in runtime.state.pools.items() if k in live_keys})

    by_quota: dict[str, list[InferencePool]] = defaultdict(list)
    for pool, _ in pools.values():
        by_quota[pool.spec.quotaRef].append(pool)
    for name in sorted(set(by_quota) | set(quotas)):
        quota, quota_body = quotas.get(name, (None, None))
        governing: FleetQuota | QuotaUnavailable | None = quota
        if quota is None:  # fail closed: the pools keep the caps they were last granted
            governing = QuotaUnavailable(name, f"invalid ({invalid[name]})" if name in invalid else "not found")
        result = tick(by_quota.get(name, []), governing, signals, observed, state, now)
        state = result.state
        if quota is not None and quota_body is not None:
            ref = pool_ref(quota_body)
            await _guarded(runtime.write_status(ref, quota_body, quota_status(
                quota, runtime.status_of(ref, quota_body), result, stamp), QUOTA_STATUS_FIELDS))
        if quota is not None:
            _tier_metrics(quota, result.tiers)
        steps = [_isolated(runtime, body, act(runtime, pool, body, quota, decision, observed[decision.key],
                                              live[decision.key], signals.for_pool(*decision.key),
                                              state.memory(decision.key), now), stamp)
                 for decision in result.decisions for pool, body in [pools[decision.key]]]
        await _bounded(steps)
    runtime.state = state


API_CONCURRENCY = 16
"""Pools acted on at once: their API calls overlap, and a slow call delays only its own pool."""


async def _bounded(steps: list[Any], limit: int = API_CONCURRENCY) -> None:
    """Await every step, at most ``limit`` at a time."""
    gate = asyncio.Semaphore(limit)

    async def one(step: Any) -> None:
        async with gate:
            await step

    await asyncio.gather(*(one(step) for step in steps))


async def _repair(runtime: Runtime, key: PoolKey, body: dict[str, Any], quotas: Mapping[str, FleetQuota],
                  children: Any) -> None:
    """Re-apply a pool's children when they drifted from what was applied (deleted, hand-edited, left over)
    or the pool was just resumed (its spec may have changed while paused), back to the replicas last applied."""
    seen = children.get(key)
    applied = runtime.children.get(key)
    reasons = ["the pool was resumed"] if resumed(runtime.status_of(pool_ref(body), body)) else []
    if applied is not None:  # else not applied by this process yet: the spec handler's resume does it
        reasons += drift(applied, seen)
    if not reasons:
        return
    message = "; ".join(reasons)
    logger.info("Re-applying %s/%s: %s", *key, message)
    await reconcile_spec(runtime, body, quotas, runtime.applied.get(key), seen)
    reason = "Resumed" if reasons[0] == "the pool was resumed" else "Repaired"
    await runtime.kube.post_event(pool_ref(body), "Normal", reason, f"re-applied the pool's objects: {message}")


def _of_kind(workload: Workload | None, pool: InferencePool) -> Workload | None:
    """The workload if it is of the kind the pool renders now (a left-over one is not the pool's)."""
    return workload if workload is not None and workload.kind == workload_kind(pool) else None


async def _guarded(call: Any) -> None:
    """Await one API interaction; a failure is logged and retried at the next tick."""
    try:
        await call
    except KubeError as error:
        logger.warning("%s (retrying next tick)", error)


async def _isolated(runtime: Runtime, body: dict[str, Any], call: Any, stamp: str) -> None:
    """Await one pool's step; any failure stays with that pool: logged, reported on it, retried next tick."""
    key = pool_key(body)
    try:
        await call
    except Exception as error:
        message = str(error) if isinstance(error, KubeError) else f"{type(error).__name__}: {error}"
        logger.warning("Pool %s/%s failed this tick (retrying next tick): %s", *key, message,
                       exc_info=not isinstance(error, KubeError))
        observability.pool_series(observability.POOL_FAILURES, *key).inc()
        ref = pool_ref(body)
        try:
            if await runtime.write_status(ref, body, not_reconciled(runtime.status_of(ref, body), "TickFailed", message,
                                                                 (body.get("metadata") or {}).get("generation"),
                                                                 stamp), POOL_STATUS_FIELDS):
                await runtime.kube.post_event(ref, "Warning", "TickFailed", message)
        except KubeError as status_error:
            logger.warning("Could not report the failure on %s/%s: %s", *key, status_error)


def _tier_metrics(quota: FleetQuota, tiers: Iterable[Any]) -> None:
    """Tier use and budgets as gauges (a limit that is not set is left out: unlimited)."""
    name = quota.metadata.name
    for usage in tiers:
        observability.TIER_GPUS.labels(name, usage.name).set(usage.gpus)
        observability.TIER_DOLLARS.labels(name, usage.name).set(usage.dollars_per_hour)
    for tier in quota.spec.tiers:
        limit = tier.limit
        if limit is not None and limit.gpus is not None:
            observability.TIER_BUDGET_GPUS.labels(name, tier.name).set(limit.gpus)
        if limit is not None and limit.dollarsPerHour is not None:
            observability.TIER_BUDGET_DOLLARS.labels(name, tier.name).set(limit.dollarsPerHour)


def _target(pool: InferencePool, decision: PoolDecision, observed: PoolObservation,
            workload: Workload | None) -> tuple[int, int | None] | None:
    """(replicas, max-num-seqs) to apply to the workload, or None to leave it alone."""
    mode = pool.spec.autoscaling.mode
    if mode == "Managed":
        if (workload is None or decision.desired_replicas != observed.replicas
                or decision.max_num_seqs != observed.max_num_seqs):
            return decision.desired_replicas, decision.max_num_seqs
    elif mode in ("External", "Off"):
        count = pool.spec.replicas.count
        if count is not None and (workload is None or count != observed.replicas):
            return count, observed.max_num_seqs
    return None


async def act(runtime: Runtime, pool: InferencePool, body: dict[str, Any], quota: FleetQuota | None,
              decision: PoolDecision, observed: PoolObservation, workload: Workload | None,
              signals: PoolSignals, memory: PoolMemory, now: float) -> None:
    """Apply one pool's decision, post its Events, write its status (with the planner's memory)."""
    ref = pool_ref(body)
    async with runtime.locks[decision.key]:
        target = _target(pool, decision, observed, workload)
        changed_seqs = target is not None and target[1] != observed.max_num_seqs
        if target is not None:
            drained = ""
            if workload is not None and workload.kind == "Deployment" and target[0] < observed.replicas:
                drained = await prepare_scale_in(runtime, pool, decision.key, target[0], now)
            result = await runtime.kube.apply(workload_of(render(pool, quota, runtime.settings, *target)))
            workload = Workload.from_body(result)
            runtime.applied[decision.key] = workload
            await _announce(runtime, pool, body, decision, observed, target, changed_seqs, drained)
        old = runtime.status_of(ref, body)
        unsaved = runtime.unsaved_decisions.get(decision.key)
        base = old if unsaved is None else {**(old or {}), "decisions": unsaved}
        status = pool_status(pool, base, decision, observed, workload, signals, quota, changed_seqs, rfc3339(now),
                             paused(body))
        try:
            await runtime.write_status(ref, body, with_memory(old, status, memory, now), POOL_STATUS_FIELDS)
        except KubeError:
            runtime.unsaved_decisions[decision.key] = status["decisions"]  # written with the next status
            raise
        runtime.unsaved_decisions.pop(decision.key, None)
        observability.set_pool_conditions(*decision.key, ((c["type"], c["status"]) for c in status["conditions"]))


MEMORY_PERSIST_INTERVAL = 600.0
"""Seconds a pool's persisted memory may age before it alone causes a status write (it is refreshed for free
with every other status write). Each such write is one API request per pool per interval, so at 1,000 steady
pools this sets the API requests per tick (1,000 x 5 s / 600 s: about 8); a restarted operator resumes from a
memory at most this old, its times shifted as after a clock step (planner.clock)."""


def with_memory(old: dict[str, Any] | None, status: dict[str, Any], memory: PoolMemory,
                now: float) -> dict[str, Any]:
    """``status`` with ``plannerMemory``; it and ``sizing`` move every tick, so both are fresh when the status is
    written anyway or the persisted memory is old, and otherwise stay as they were (no write for them alone)."""
    kept = (old or {}).get("plannerMemory")
    written_at = memory_time(kept)
    if written_at is not None and 0 <= now - written_at < MEMORY_PERSIST_INTERVAL:
        unchanged = {**status, "plannerMemory": kept, "sizing": (old or {}).get("sizing")}
        if status_patch(old, unchanged, POOL_STATUS_FIELDS) is None:
            return unchanged
    return {**status, "plannerMemory": encode_memory(memory)}


async def _announce(runtime: Runtime, pool: InferencePool, body: dict[str, Any], decision: PoolDecision,
                    observed: PoolObservation, target: tuple[int, int | None], changed_seqs: bool,
                    drained: str) -> None:
    """An Event per applied action, with the planner's reason (and, for a scale-in, which pods go)."""
    ref = pool_ref(body)
    if not decision.applied:
        mode = pool.spec.autoscaling.mode
        await runtime.kube.post_event(ref, "Normal", "ScaledToCount",
                                      _with(f"replicas {observed.replicas} -> {target[0]}: replicas.count "
                                            f"(mode {mode})", drained))
        return
    for record in decision.records:
        if record.action not in ACTIONS or record.from_ == record.to:
            continue
        if record.action == "SetMaxNumSeqs" and not changed_seqs:
            continue
        observability.pool_series(observability.DECISIONS, *decision.key, record.action).inc()
        await runtime.kube.post_event(ref, "Normal", record.action,
                                      _with(record.reason, drained) if record.action == "ScaleDown" else record.reason)


def _with(message: str, note: str) -> str:
    return f"{message}; {note}" if note else message
