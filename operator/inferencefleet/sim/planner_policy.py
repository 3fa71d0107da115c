"""The inferencefleet policy in the simulator: the operator's own ``planner.controller.tick``.

Every ``interval`` seconds (the operator's default tick, 5 s) it passes the pools, the quota, the
signals as Prometheus would show them, the observed replicas and the planner's memory to ``tick``
and applies each pool's desired replicas and max-num-seqs, as the operator does in Managed mode.
Pools are simulated in Managed mode whatever their spec says (the question is what the operator
would do with them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..api.v1alpha1 import FleetQuota, InferencePool
from ..planner.controller import tick
from ..planner.memory import FleetState
from ..planner.tuning import DEFAULT_TUNING, PlannerTuning
from ..planner.types import PoolKey, TickResult
from ..signals.model import SignalsSnapshot
from .fleet import Policy, PoolView, Target


def managed(pool: InferencePool) -> InferencePool:
    """The pool with autoscaling.mode Managed (and no /scale count, which Managed forbids)."""
    spec = pool.spec
    autoscaling = spec.autoscaling.model_copy(update={"mode": "Managed"})
    replicas = spec.replicas.model_copy(update={"count": None})
    return pool.model_copy(update={"spec": spec.model_copy(update={"autoscaling": autoscaling,
                                                                   "replicas": replicas})})


class InferenceFleetPolicy(Policy):
    """Calls the planner's tick, exactly as the operator does."""

    name = "inferencefleet"

    def __init__(self, interval: float = 5.0, on_tick: Callable[[float, TickResult], None] | None = None,
                 tuning: PlannerTuning = DEFAULT_TUNING, name: str = "inferencefleet") -> None:
        """``on_tick(now, result)`` sees every tick's decisions, reasons and tier usage (for reports);
        ``tuning``: the planner's constants (benchmarks/sensitivity.py varies them); ``name``: the policy's
        name in results."""
        if interval <= 0:
            raise ValueError(f"tick interval must be > 0 seconds (got {interval})")
        self.interval = interval
        self.name = name
        self._pools: list[InferencePool] = []
        self._quota: FleetQuota | None = None
        self._state = FleetState()
        self._on_tick = on_tick
        self._tuning = tuning

    def start(self, pools: Sequence[InferencePool], quota: FleetQuota | None) -> None:
        self._pools = [managed(p) for p in pools]
        self._quota = quota
        self._state = FleetState()

    def decide(self, now: float, signals: SignalsSnapshot, pools: Mapping[PoolKey, PoolView]) -> dict[PoolKey, Target]:
        observed = {key: view.observation for key, view in pools.items()}
        result = tick(self._pools, self._quota, signals, observed, self._state, now, self._tuning)
        self._state = result.state
        if self._on_tick is not None:
            self._on_tick(now, result)
        return {d.key: Target(d.desired_replicas, d.max_num_seqs) for d in result.decisions}
