"""The fleet tick: one loop for every pool. Observe, read ONE signals snapshot, plan, act, report.

Per tick: workloads (from the watch cache) -> observations; one Prometheus snapshot for all pools;
``planner.controller.tick`` per FleetQuota (pools grouped by quotaRef); then per pool: Managed
applies replicas and max-num-seqs (server-side apply of the rendered workload), Shadow applies
nothing, External/Off apply replicas.count; status via /status only when it changed; an Event for
every applied action. A failing pool or API call is logged and retried next tick; the loop never dies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from ..api.v1alpha1 import FleetQuota, FleetQuotaStatus, InferencePool
from ..kube.client import KubeError
from ..planner.controller import tick
from ..planner.types import FleetState, PoolDecision, PoolKey, PoolObservation
from ..signals.model import SIGNAL_NAMES, PoolSignals, Sample, SignalsSnapshot
from ..signals.status import rfc3339
from .runtime import Runtime, parse_pool, parse_quota, pool_key, pool_ref, spec_accepted
from .spec import POOL_STATUS_FIELDS
from .status import ACTIONS, invalid_quota, pool_status, quota_status
from .workloads import Workload, newest, observation, render, workload_of

QUOTA_STATUS_FIELDS = tuple(f.alias or name for name, f in FleetQuotaStatus.model_fields.items())
NO_PROMETHEUS = "no Prometheus configured (PROMETHEUS_URL is not set)"

logger = logging.getLogger(__name__)


async def run_forever(runtime: Runtime, pools: Any, quotas: Any, workloads: Any) -> None:
    """Tick every ``settings.tick_interval`` seconds over the live kopf indices until cancelled."""
    interval = runtime.settings.tick_interval
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            await fleet_tick(runtime, _values(pools), _values(quotas), _workloads(workloads), time.time())
        except Exception:  # the loop must survive anything; the next tick retries
            logger.exception("Fleet tick failed")
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
                     workloads: Mapping[PoolKey, Workload], now: float) -> None:
    """One tick over every pool and quota."""
    stamp = rfc3339(now)
    pools: dict[PoolKey, tuple[InferencePool, dict[str, Any]]] = {}
    for body in pool_bodies:
        pool, _ = parse_pool(body)
        if pool is not None and spec_accepted(runtime.status_of(pool_ref(body), body), pool.metadata.generation):
            pools[pool_key(body)] = (pool, body)
    quotas: dict[str, tuple[FleetQuota, dict[str, Any]]] = {}
    for body in quota_bodies:
        quota, problems = parse_quota(body)
        if quota is not None:
            quotas[quota.metadata.name] = (quota, body)
            continue
        generation = (body.get("metadata") or {}).get("generation")
        ref = pool_ref(body)
        await _guarded(runtime.write_status(ref, body, invalid_quota(runtime.status_of(ref, body), problems,
                                                                     generation, stamp), QUOTA_STATUS_FIELDS))

    live = {k: newest(workloads.get(k), runtime.applied.get(k)) for k in pools}
    observed = {k: observation(live[k], runtime.state.memory(k), now) for k in pools}
    signals = await snapshot(runtime, pools, now)
    state = FleetState({k: m for k, m in runtime.state.pools.items() if k in {pool_key(b) for b in pool_bodies}})

    by_quota: dict[str, list[InferencePool]] = defaultdict(list)
    for pool, _ in pools.values():
        by_quota[pool.spec.quotaRef].append(pool)
    for name in sorted(set(by_quota) | set(quotas)):
        quota, quota_body = quotas.get(name, (None, None))
        result = tick(by_quota.get(name, []), quota, signals, observed, state, now)
        state = result.state
        if quota is not None and quota_body is not None:
            ref = pool_ref(quota_body)
            await _guarded(runtime.write_status(ref, quota_body, quota_status(
                quota, runtime.status_of(ref, quota_body), result, stamp), QUOTA_STATUS_FIELDS))
        for decision in result.decisions:
            pool, body = pools[decision.key]
            await _guarded(act(runtime, pool, body, quota, decision, observed[decision.key], live[decision.key],
                               signals.for_pool(*decision.key), now))
    runtime.state = state


async def _guarded(call: Any) -> None:
    """Await one API interaction; a failure is logged and retried at the next tick."""
    try:
        await call
    except KubeError as error:
        logger.warning("%s (retrying next tick)", error)


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
              signals: PoolSignals, now: float) -> None:
    """Apply one pool's decision, post its Events, write its status."""
    ref = pool_ref(body)
    async with runtime.locks[decision.key]:
        target = _target(pool, decision, observed, workload)
        changed_seqs = target is not None and target[1] != observed.max_num_seqs
        if target is not None:
            result = await runtime.kube.apply(workload_of(render(pool, quota, runtime.settings, *target)))
            workload = Workload.from_body(result)
            runtime.applied[decision.key] = workload
            await _announce(runtime, pool, body, decision, observed, target, changed_seqs)
        status = pool_status(pool, runtime.status_of(ref, body), decision, observed, workload, signals, quota,
                             changed_seqs, rfc3339(now))
        await runtime.write_status(ref, body, status, POOL_STATUS_FIELDS)


async def _announce(runtime: Runtime, pool: InferencePool, body: dict[str, Any], decision: PoolDecision,
                    observed: PoolObservation, target: tuple[int, int | None], changed_seqs: bool) -> None:
    """An Event per applied action, with the planner's reason."""
    ref = pool_ref(body)
    if not decision.applied:
        mode = pool.spec.autoscaling.mode
        await runtime.kube.post_event(ref, "Normal", "ScaledToCount",
                                      f"replicas {observed.replicas} -> {target[0]}: replicas.count (mode {mode})")
        return
    for record in decision.records:
        if record.action not in ACTIONS or record.from_ == record.to:
            continue
        if record.action == "SetMaxNumSeqs" and not changed_seqs:
            continue
        await runtime.kube.post_event(ref, "Normal", record.action, record.reason)
