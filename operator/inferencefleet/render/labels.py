"""Label and annotation keys on everything the renderer produces, and the selectors built from them."""

from __future__ import annotations

from ..api.v1alpha1 import InferencePool

NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
MANAGED_BY = "app.kubernetes.io/managed-by"
POOL = "inferencefleet.io/pool"
TIER = "inferencefleet.io/tier"
METRICS = "inferencefleet.io/metrics"
ENGINE_NAME = "inferencefleet-engine"
MANAGER = "inferencefleet"

CONFIG_HASH = "inferencefleet.io/config-hash"
GPUS_PER_REPLICA = "inferencefleet.io/gpus-per-replica"
DOLLARS_PER_HOUR_PER_REPLICA = "inferencefleet.io/dollars-per-hour-per-replica"
DOLLARS_PER_HOUR = "inferencefleet.io/dollars-per-hour"


def object_labels(pool: InferencePool) -> dict[str, str]:
    """Labels on every rendered object and pod."""
    name = pool.metadata.name
    return {
        NAME: ENGINE_NAME,
        INSTANCE: name,
        MANAGED_BY: MANAGER,
        POOL: name,
        TIER: pool.spec.tier,
    }


def selector(pool: InferencePool) -> dict[str, str]:
    """Immutable workload selector: every pod of the pool (tier may change, so it is not part of it)."""
    return {NAME: ENGINE_NAME, POOL: pool.metadata.name}


def metrics_selector(pool: InferencePool) -> dict[str, str]:
    """Pods that serve the API and metrics: all Deployment pods, only LeaderWorkerSet leaders."""
    return {**selector(pool), METRICS: "true"}
