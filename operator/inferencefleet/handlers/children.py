"""The objects a pool owns, as the watch sees them, against what the operator last applied.

Level-based repair: a child that is missing, was changed by another writer, or is no longer rendered
(a Deployment left behind when ``nodesPerReplica`` turns the pool into a LeaderWorkerSet) is drift;
the fleet tick re-applies the pool's children and prunes the leftovers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..kube.resources import ObjectRef
from .workloads import pool_key_of

CHILD_RESOURCES = (
    ("", "v1", "configmaps"),
    ("apps", "v1", "deployments"),
    ("leaderworkerset.x-k8s.io", "v1", "leaderworkersets"),
    ("", "v1", "services"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("monitoring.coreos.com", "v1", "podmonitors"),
)
"""(group, version, plural) of every kind a pool renders."""

ChildId = tuple[str, str]
"""(kind, name) of a child within its pool's namespace."""


@dataclass(frozen=True)
class Child:
    """One owned object: its reference and a version that moves whenever its spec is written."""

    ref: ObjectRef
    version: int
    """metadata.generation where the kind has one, else metadata.resourceVersion."""

    @property
    def id(self) -> ChildId:
        return (self.ref.kind, self.ref.name)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Child:
        return cls(ObjectRef.of(dict(body)), version_of(body))


def version_of(body: Mapping[str, Any]) -> int:
    """generation when set (spec writes only: a Deployment's status churn does not move it), else the
    resourceVersion (kinds without generation, e.g. Service, have no status churn of their own)."""
    meta = body.get("metadata") or {}
    if meta.get("generation"):
        return int(meta["generation"])
    version = str(meta.get("resourceVersion") or "")
    return int(version) if version.isdigit() else 0


def child_entry(body: Mapping[str, Any]) -> dict[Any, Child] | None:
    """A kopf index entry {pool key: Child} for an object we manage (None for anything else)."""
    key = pool_key_of(body)
    return {key: Child.from_body(body)} if key is not None else None


def drift(applied: Mapping[ChildId, int], seen: Iterable[Child]) -> list[str]:
    """Why the watched children differ from the applied ones (empty: in sync).

    A watched version below the applied one is the watch lagging our own write, not drift.
    """
    found = {child.id: child.version for child in seen}
    reasons = [f"{kind}/{name} is missing" for (kind, name) in applied if (kind, name) not in found]
    reasons += [f"{kind}/{name} was changed by another writer" for (kind, name), version in applied.items()
                if found.get((kind, name), version) > version]
    reasons += [f"{kind}/{name} is no longer rendered" for (kind, name) in found if (kind, name) not in applied]
    return reasons
