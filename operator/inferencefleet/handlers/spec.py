"""Reconcile one InferencePool's spec: validate, render, server-side apply every child, report.

Level-based: runs on create, update and resume with the whole object, never a diff. An invalid or
infeasible spec is reported (SpecValid False, an Event) and not retried: only a spec change can
fix it, and that triggers the handler again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..api.v1alpha1 import FleetQuota, InferencePoolStatus
from ..kube.client import KubeError
from ..kube.resources import ObjectRef
from ..render.errors import RenderError
from ..signals.status import rfc3339
from .children import Child, ChildId, version_of
from .runtime import Runtime, parse_pool, paused, pool_key, pool_ref
from .status import PAUSED_ANNOTATION, applied_spec, invalid_spec, not_reconciled, paused_spec
from .workloads import WORKLOAD_KINDS, Workload, initial_replicas, newest, render

OPTIONAL_KINDS = ("PodMonitor",)
"""Kinds whose CRD may be absent (no Prometheus operator): skipped with a warning, not an error."""
POOL_STATUS_FIELDS = tuple(f.alias or name for name, f in InferencePoolStatus.model_fields.items())

logger = logging.getLogger(__name__)


async def reconcile_spec(runtime: Runtime, body: dict[str, Any], quotas: Mapping[str, FleetQuota],
                         workload: Workload | None, existing: Iterable[Child] = ()) -> None:
    """Apply the pool's children, delete the ``existing`` ones it no longer renders, write SpecValid;
    raises KubeError when the API fails (retry)."""
    key = pool_key(body)
    ref = pool_ref(body)
    async with runtime.locks[key]:
        pool, problems = parse_pool(body)
        generation = (body.get("metadata") or {}).get("generation")
        if pool is None:
            await _reject(runtime, ref, body, "InvalidSpec", problems, generation)
            return
        workload = newest(workload, runtime.applied.get(key))
        try:
            objects = render(pool, quotas.get(pool.spec.quotaRef), runtime.settings,
                             initial_replicas(pool, workload), workload.max_num_seqs if workload else None)
        except RenderError as error:
            await _reject(runtime, ref, body, "Infeasible", str(error), generation)
            return
        if paused(body):  # accepted, not applied: the tick applies it once the annotation goes
            await runtime.write_status(ref, body, paused_spec(pool, runtime.status_of(ref, body),
                                                              rfc3339(time.time())), POOL_STATUS_FIELDS)
            logger.info("Paused (annotation %s): nothing applied", PAUSED_ANNOTATION)
            return
        if key not in runtime.children:  # first apply by this process: never take over another's object
            foreign = await _foreign(runtime, objects, (pool.metadata.model_extra or {}).get("uid"))
            if foreign:
                await _reject(runtime, ref, body, "Conflict", "; ".join(foreign), generation)
                raise NameTaken("; ".join(foreign))
        applied = []
        versions: dict[ChildId, int] = {}
        for child in objects:
            child_ref = ObjectRef.of(child)
            try:
                result = await runtime.kube.apply(child)
            except KubeError as error:
                if error.status == 404 and child["kind"] in OPTIONAL_KINDS:
                    logger.warning("Skipped %s: its kind is not served (%s)", child_ref, error)
                    continue
                await _apply_failed(runtime, ref, body, str(error), generation)
                raise
            applied.append(str(child_ref))
            versions[(child_ref.kind, child_ref.name)] = version_of(result)
            if child["kind"] in WORKLOAD_KINDS:
                runtime.applied[key] = Workload.from_body(result)
        runtime.children[key] = versions
        for leftover in [c for c in existing if c.id not in versions]:
            await runtime.kube.delete(leftover.ref)
            logger.info("Deleted %s: the pool no longer renders it", leftover.ref)
        status = applied_spec(pool, runtime.status_of(ref, body), applied, rfc3339(time.time()))
        await runtime.write_status(ref, body, status, POOL_STATUS_FIELDS)
        logger.info("Applied %s", ", ".join(applied))


class NameTaken(Exception):
    """A rendered object's name belongs to an object the pool does not own (retried: it may go away)."""


async def _foreign(runtime: Runtime, objects: Iterable[dict[str, Any]], uid: str | None) -> list[str]:
    """The rendered objects whose name is taken by an object this pool does not own, and by what."""
    found = []
    for child in objects:
        child_ref = ObjectRef.of(child)
        try:
            existing = await runtime.kube.get(child_ref)
        except KubeError as error:
            if error.status == 404 and child["kind"] in OPTIONAL_KINDS:
                continue
            raise
        if existing is None:
            continue
        owners = (existing.get("metadata") or {}).get("ownerReferences") or []
        if not any(o.get("uid") == uid and o.get("controller") for o in owners):
            found.append(f"{child_ref.kind} {child_ref.namespace}/{child_ref.name} already exists and is not "
                         f"this pool's (rename the pool, or delete or rename that {child_ref.kind})")
    return found


async def _apply_failed(runtime: Runtime, ref: ObjectRef, body: dict[str, Any], message: str,
                        generation: int | None) -> None:
    """Reconciled False and a Warning Event when the API server refuses an apply (RBAC, admission, 422)."""
    status = not_reconciled(runtime.status_of(ref, body), "ApplyFailed", message, generation, rfc3339(time.time()))
    try:
        if await runtime.write_status(ref, body, status, POOL_STATUS_FIELDS):
            await runtime.kube.post_event(ref, "Warning", "ApplyFailed", message)
    except KubeError as error:
        logger.warning("Could not report the failed apply on %s: %s", ref, error)
    logger.error("Apply failed (retrying): %s", message)


async def _reject(runtime: Runtime, ref: ObjectRef, body: dict[str, Any], reason: str, message: str,
                  generation: int | None) -> None:
    """SpecValid False with the field paths, and a Warning Event when that is news."""
    status = invalid_spec(runtime.status_of(ref, body), reason, message, generation, rfc3339(time.time()))
    if await runtime.write_status(ref, body, status, POOL_STATUS_FIELDS):
        await runtime.kube.post_event(ref, "Warning", reason, message)
    logger.warning("Rejected the spec (%s): %s", reason, message)
