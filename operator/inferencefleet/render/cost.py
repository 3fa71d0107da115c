"""Quota checks and cost annotations for a pool rendered against a FleetQuota."""

from __future__ import annotations

from ..api.v1alpha1 import FleetQuota, InferencePool
from . import labels
from .errors import RenderError


def gpu_price(pool: InferencePool, quota: FleetQuota) -> float:
    """Dollars per GPU-hour of the pool's GPU type; RenderError if the quota, the tier or the price does not fit."""
    spec = quota.spec
    if pool.spec.quotaRef != quota.metadata.name:
        raise RenderError(
            "spec.quotaRef",
            f"'{pool.spec.quotaRef}' is not FleetQuota '{quota.metadata.name}'; allowed: the FleetQuota the pool "
            "draws from, the one quotaRef names",
        )
    if spec.tier(pool.spec.tier) is None:
        raise RenderError(
            "spec.tier",
            f"'{pool.spec.tier}' is not a tier of FleetQuota '{quota.metadata.name}'; allowed: "
            f"{', '.join(t.name for t in spec.tiers)}",
        )
    gpu_type = pool.spec.topology.gpu.type
    price = spec.price(gpu_type)
    if price is None:
        raise RenderError(
            "spec.topology.gpu.type",
            f"'{gpu_type}' has no price in FleetQuota '{quota.metadata.name}' gpuPrices; priced types: "
            f"{', '.join(p.type for p in spec.gpuPrices)}",
        )
    return price


def cost_annotations(pool: InferencePool, replicas: int, price: float | None) -> dict[str, str]:
    """GPUs per replica, and the hourly cost per replica and in total when the price is known."""
    gpus = pool.spec.topology.gpus
    annotations = {labels.GPUS_PER_REPLICA: str(gpus)}
    if price is not None:
        annotations[labels.DOLLARS_PER_HOUR_PER_REPLICA] = f"{gpus * price:.2f}"
        annotations[labels.DOLLARS_PER_HOUR] = f"{gpus * price * replicas:.2f}"
    return annotations
