"""Quota checks and cost annotations for a pool rendered against a FleetQuota; GPU prices for reports."""

from __future__ import annotations

from ..api.v1alpha1 import FleetQuota, InferencePool
from . import labels
from .errors import RenderError

DEFAULT_GPU_PRICES = {
    "H100-80GB": 3.0,
    "H200-141GB": 3.8,
    "A100-80GB": 1.8,
    "A100-40GB": 1.3,
    "L40S": 1.0,
    "A10G": 0.75,
    "L4": 0.5,
}
"""Dollars per GPU-hour that ``simulate``, ``demo`` and ``backtest`` charge a pool no FleetQuota prices:
round on-demand cloud prices (H100 and A100-80GB as in the example FleetQuota). The operator never
uses them; a FleetQuota's gpuPrices set the prices that budgets use."""


def report_price(pool: InferencePool, quota: FleetQuota | None) -> tuple[float | None, str]:
    """(dollars per GPU-hour, where it comes from) for reports: the FleetQuota's price of the pool's GPU
    type, else DEFAULT_GPU_PRICES, else (None, why there is none)."""
    gpu_type = pool.spec.topology.gpu.type
    if quota is not None and pool.spec.quotaRef == quota.metadata.name:
        price = quota.spec.price(gpu_type)
        if price is not None:
            return price, f"FleetQuota {quota.metadata.name}"
    if gpu_type in DEFAULT_GPU_PRICES:
        return DEFAULT_GPU_PRICES[gpu_type], "default price table"
    return None, (f"GPU type {gpu_type!r} has no price: give a FleetQuota with a gpuPrices entry for it "
                  f"(the default table prices {', '.join(DEFAULT_GPU_PRICES)})")


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
