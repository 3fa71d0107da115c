"""The operator's process-wide state (kept in kopf's memo): clients, planner memory, last writes."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .. import observability
from ..api.conditions import SPEC_VALID
from ..api.v1alpha1 import API_VERSION, FleetQuota, InferencePool
from ..kube.client import API_THREADS, Kube
from ..kube.resources import ObjectRef
from ..manifests import Document, parse
from ..planner.memory import FleetState
from ..planner.types import PoolKey
from ..settings import OperatorSettings
from ..signals.prometheus import PrometheusSource
from .status import PAUSED_ANNOTATION, conditions_of, status_patch
from .workloads import Workload

logger = logging.getLogger(__name__)

SPEC_CONCURRENCY = API_THREADS
"""Spec handlers at once (more would only wait for an API thread): at start-up kopf runs one per pool, and a
thousand of them rendering their children together would hold every pool's objects at the same time."""


@dataclass
class Runtime:
    """Everything handlers share; one per operator process."""

    settings: OperatorSettings
    kube: Kube
    source: PrometheusSource | None
    state: FleetState = field(default_factory=FleetState)
    """The planner's memory between ticks."""
    written: dict[ObjectRef, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    """(resourceVersion, status) as last written per object: fresher than the watch cache until the watch
    delivers that version; from then on the cluster's status wins (another writer may have changed it)."""
    applied: dict[PoolKey, Workload] = field(default_factory=dict)
    """Workloads as last applied (fresher than the watch cache until its event arrives)."""
    children: dict[PoolKey, dict[tuple[str, str], int]] = field(default_factory=dict)
    """Per pool, {(kind, name): version} of the children as last applied (handlers.children.drift)."""
    unsaved_decisions: dict[PoolKey, list[dict[str, Any]]] = field(default_factory=dict)
    """status.decisions of pools whose last status write failed: the next write carries them."""
    locks: defaultdict[PoolKey, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    """One lock per pool: the spec handler and the fleet tick never interleave on a pool."""
    spec_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SPEC_CONCURRENCY))
    """Spec handlers running at once (the rest wait before rendering anything)."""

    def status_of(self, ref: ObjectRef, body: dict[str, Any]) -> dict[str, Any] | None:
        """The freshest known status of an object: our last write until the watch caught up with it."""
        status = body.get("status")
        seen = status if isinstance(status, dict) else None
        cached = self.written.get(ref)
        if cached is None:
            return seen
        if _caught_up(str((body.get("metadata") or {}).get("resourceVersion") or ""), cached[0]):
            del self.written[ref]
            return seen
        return cached[1]

    async def write_status(self, ref: ObjectRef, body: dict[str, Any], new: dict[str, Any],
                           owned: Any) -> bool:
        """Patch /status when ``new`` differs from the freshest known status; True when written."""
        old = self.status_of(ref, body) or {}
        patch = status_patch(old, new, owned)
        if patch is None:
            return False
        logger.debug("Status of %s changed: %s", ref, ", ".join(k for k in sorted(patch) if old.get(k) != patch[k]))
        result = await self.kube.patch_status(ref, patch)
        version = str(((result or {}).get("metadata") or {}).get("resourceVersion") or "")
        self.written[ref] = (version, new)
        return True

    def forget(self, live: set[PoolKey]) -> None:
        """Drop every cache entry and metric series of pools that no longer exist (locks only while free)."""
        for key in (set(self.state.pools) | set(self.applied) | set(self.locks) | set(self.children)) - live:
            observability.forget_pool(*key)
        for ref in [r for r in self.written if r.kind == "InferencePool" and (r.namespace, r.name) not in live]:
            del self.written[ref]
        for cache in (self.applied, self.unsaved_decisions, self.children):
            for key in [k for k in cache if k not in live]:
                del cache[key]
        for key in [k for k, lock in self.locks.items() if k not in live and not lock.locked()]:
            del self.locks[key]
        if any(k not in live for k in self.state.pools):
            self.state = FleetState({k: m for k, m in self.state.pools.items() if k in live})


def _caught_up(seen: str, written: str) -> bool:
    """True when the watched resourceVersion ``seen`` is at or past ``written``.

    resourceVersions are opaque, but the API server's come from etcd revisions and grow; one that is not
    a number is treated as caught up (the cluster wins).
    """
    if not written or seen == written:
        return True
    if seen.isdigit() and written.isdigit():
        return int(seen) >= int(written)
    return True


def pool_key(body: dict[str, Any]) -> PoolKey:
    """(namespace, name) of a pool body."""
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace") or "default"), str(meta.get("name")))


def pool_ref(body: dict[str, Any]) -> ObjectRef:
    """The ObjectRef of an InferencePool or FleetQuota body."""
    return ObjectRef.of({"apiVersion": API_VERSION, **body})


PARSED_CACHE_SIZE = 20_000
"""Parsed objects kept by (kind, uid, generation, labels): each tick reads every pool, few of them change."""
_parsed: dict[tuple[Any, ...], tuple[Any, str]] = {}


def _model(body: dict[str, Any], kind: str) -> tuple[Any, str]:
    """Parse the spec of a served object; on failure the problems as 'field.path: message; ...'.

    The spec only changes with the generation, so an object seen before is not validated again (the
    models are frozen: sharing them is safe)."""
    meta = body.get("metadata") or {}
    uid, generation = meta.get("uid"), meta.get("generation")
    if uid is None or generation is None:
        return _parse(body, kind)
    key = (kind, uid, generation, meta.get("namespace"), meta.get("name"),
           tuple(sorted((meta.get("labels") or {}).items())))
    found = _parsed.get(key)
    if found is None:
        found = _parsed[key] = _parse(body, kind)
        if len(_parsed) > PARSED_CACHE_SIZE:
            del _parsed[next(iter(_parsed))]
    return found


def _parse(body: dict[str, Any], kind: str) -> tuple[Any, str]:
    meta = body.get("metadata") or {}
    clean = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {k: meta[k] for k in ("name", "namespace", "generation", "uid", "labels") if k in meta},
        "spec": body.get("spec"),
    }
    model, problems = parse(Document(f"{meta.get('namespace') or ''}/{meta.get('name')}", 0, clean))
    return model, "; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in problems)


def parse_pool(body: dict[str, Any]) -> tuple[InferencePool | None, str]:
    """The InferencePool model of a served body, or None and why not."""
    return _model(body, "InferencePool")


def parse_quota(body: dict[str, Any]) -> tuple[FleetQuota | None, str]:
    """The FleetQuota model of a served body, or None and why not."""
    return _model(body, "FleetQuota")


def paused(body: dict[str, Any]) -> bool:
    """True when the pool carries ``inferencefleet.io/paused: "true"``: no applies, no scaling."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(PAUSED_ANNOTATION, "")).lower() == "true"


def as_shadow(pool: InferencePool) -> InferencePool:
    """The pool planned in Shadow mode: decided and reported, never acted on (a paused pool)."""
    autoscaling = pool.spec.autoscaling.model_copy(update={"mode": "Shadow"})
    return pool.model_copy(update={"spec": pool.spec.model_copy(update={"autoscaling": autoscaling})})


def spec_accepted(status: dict[str, Any] | None, generation: int | None) -> bool:
    """True once the spec handler accepted this generation (SpecValid True for it)."""
    valid = next((c for c in conditions_of(status) if c.type == SPEC_VALID), None)
    return valid is not None and valid.status == "True" and valid.observedGeneration == generation
