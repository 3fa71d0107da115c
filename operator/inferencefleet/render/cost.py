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
    problem = quota.misfit(pool.spec.tier, pool.spec.topology.gpu.type)
    if problem is not None:
        raise RenderError(*problem)
    price = spec.price(pool.spec.topology.gpu.type)
    assert price is not None
    return price


def cost_annotations(pool: InferencePool, replicas: int, price: float | None) -> dict[str, str]:
    """GPUs per replica, and the hourly cost per replica and in total when the price is known."""
    gpus = pool.spec.topology.gpus
    annotations = {labels.GPUS_PER_REPLICA: str(gpus)}
    if price is not None:
        annotations[labels.DOLLARS_PER_HOUR_PER_REPLICA] = f"{gpus * price:.2f}"
        annotations[labels.DOLLARS_PER_HOUR] = f"{gpus * price * replicas:.2f}"
    return annotations
