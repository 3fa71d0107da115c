"""REST paths of the kinds the operator reads and writes (no discovery round trips)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api.v1alpha1 import API_VERSION

PLURALS: dict[tuple[str, str], str] = {
    (API_VERSION, "InferencePool"): "inferencepools",
    (API_VERSION, "FleetQuota"): "fleetquotas",
    ("apps/v1", "Deployment"): "deployments",
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): "leaderworkersets",
    ("v1", "Service"): "services",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Event"): "events",
    ("v1", "Pod"): "pods",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitors",
}
"""(apiVersion, kind) -> plural resource name of every kind the operator touches."""


@dataclass(frozen=True)
class ObjectRef:
    """Identifies one object; ``namespace`` is None for cluster-scoped kinds."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None
    uid: str | None = None

    @classmethod
    def of(cls, body: dict[str, Any]) -> ObjectRef:
        """The reference of an object body (apiVersion, kind and metadata)."""
        meta = body.get("metadata") or {}
        return cls(body["apiVersion"], body["kind"], meta["name"], meta.get("namespace"), meta.get("uid"))

    @property
    def collection(self) -> str:
        """URL path of the kind in the object's namespace, e.g. /apis/apps/v1/namespaces/serving/deployments."""
        try:
            plural = PLURALS[(self.api_version, self.kind)]
        except KeyError:
            known = ", ".join(f"{k} ({v})" for v, k in PLURALS)
            raise ValueError(f"{self.kind} ({self.api_version}) is not a kind the operator manages; known: {known}") from None
        root = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        scope = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{root}{scope}/{plural}"

    @property
    def path(self) -> str:
        """The object's URL path, e.g. /apis/apps/v1/namespaces/serving/deployments/llama."""
        return f"{self.collection}/{self.name}"

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"
