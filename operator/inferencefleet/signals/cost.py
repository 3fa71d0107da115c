"""What a pool costs now, from its ready replicas and the FleetQuota's GPU prices (pure).

Dollars per hour = ready replicas x GPUs per replica x price of the pool's GPU type. Dollars per
million output tokens = dollars per hour / (output tokens per second x 3600) x 1e6. A value that
cannot be computed is None and ``reasons`` says why; it is never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferencefleet.api.v1alpha1 import CostStatus, FleetQuota, InferencePool

from .model import PoolSignals
from .status import rounded


@dataclass(frozen=True)
class PoolCost:
    """A pool's GPUs and cost; None fields are explained in ``reasons``."""

    gpus: int | None
    dollars_per_hour: float | None
    dollars_per_million_tokens: float | None
    reasons: tuple[str, ...] = ()

    def status(self) -> CostStatus:
        """The ``status.cost`` block of the InferencePool (dollars per token rounded like the signals)."""
        return CostStatus(
            gpus=self.gpus,
            dollarsPerHour=self.dollars_per_hour,
            dollarsPerMillionTokens=rounded(self.dollars_per_million_tokens),
        )


def pool_cost(pool: InferencePool, quota: FleetQuota, signals: PoolSignals) -> PoolCost:
    """Cost of ``pool`` from the ready replicas and output token rate in ``signals``."""
    reasons: list[str] = []
    ready = signals.ready_replicas
    gpus = round(ready.value) * pool.spec.topology.gpus if ready.value is not None else None
    if gpus is None:
        reasons.append(f"ready_replicas missing: {ready.missing}")
    gpu_type = pool.spec.topology.gpu.type
    price = quota.spec.price(gpu_type)
    if price is None:
        reasons.append(quota.unpriced(gpu_type))
    hourly = gpus * price if gpus is not None and price is not None else None
    tokens = signals.output_tokens_per_second
    per_million = None
    if tokens.value is None:
        reasons.append(f"output_tokens_per_second missing: {tokens.missing}")
    elif tokens.value <= 0:
        reasons.append("no output tokens in the window: cost per token is undefined")
    elif hourly is not None:
        per_million = hourly / (tokens.value * 3600) * 1e6
    return PoolCost(gpus, hourly, per_million, tuple(reasons))
