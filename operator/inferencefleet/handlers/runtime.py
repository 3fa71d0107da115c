"""The operator's process-wide state (kept in kopf's memo): clients, planner memory, last writes."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..api.conditions import SPEC_VALID
from ..api.v1alpha1 import API_VERSION, FleetQuota, InferencePool
from ..kube.client import Kube
from ..kube.resources import ObjectRef
from ..manifests import Document, parse
from ..planner.types import FleetState, PoolKey
from ..settings import OperatorSettings
from ..signals.prometheus import PrometheusSource
from .status import conditions_of, status_patch
from .workloads import Workload


@dataclass
class Runtime:
    """Everything handlers share; one per operator process."""

    settings: OperatorSettings
    kube: Kube
    source: PrometheusSource | None
    state: FleetState = field(default_factory=FleetState)
    """The planner's memory between ticks."""
    written: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)
    """Status as last written per object (fresher than the watch cache)."""
    applied: dict[PoolKey, Workload] = field(default_factory=dict)
    """Workloads as last applied (fresher than the watch cache until its event arrives)."""
    locks: defaultdict[PoolKey, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    """One lock per pool: the spec handler and the fleet tick never interleave on a pool."""

    def status_of(self, ref: ObjectRef, body: dict[str, Any]) -> dict[str, Any] | None:
        """The freshest known status of an object."""
        status = body.get("status")
        return self.written.get(ref, status if isinstance(status, dict) else None)

    async def write_status(self, ref: ObjectRef, body: dict[str, Any], new: dict[str, Any],
                           owned: Any) -> bool:
        """Patch /status when ``new`` differs from the freshest known status; True when written."""
        patch = status_patch(self.status_of(ref, body), new, owned)
        if patch is None:
            return False
        await self.kube.patch_status(ref, patch)
        self.written[ref] = new
        return True


def pool_key(body: dict[str, Any]) -> PoolKey:
    """(namespace, name) of a pool body."""
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace") or "default"), str(meta.get("name")))


def pool_ref(body: dict[str, Any]) -> ObjectRef:
    """The ObjectRef of an InferencePool or FleetQuota body."""
    return ObjectRef.of({"apiVersion": API_VERSION, **body})


def _model(body: dict[str, Any], kind: str) -> tuple[Any, str]:
    """Parse the spec of a served object; on failure the problems as 'field.path: message; ...'."""
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


def spec_accepted(status: dict[str, Any] | None, generation: int | None) -> bool:
    """True once the spec handler accepted this generation (SpecValid True for it)."""
    valid = next((c for c in conditions_of(status) if c.type == SPEC_VALID), None)
    return valid is not None and valid.status == "True" and valid.observedGeneration == generation
