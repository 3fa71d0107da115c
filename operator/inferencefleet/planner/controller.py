"""One planner tick: signals + observations + memory -> decisions for every pool.

The same function drives the live operator and the simulator. Pure: no I/O, no clock (``now``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..api.v1alpha1 import FleetQuota, InferencePool
from ..signals.model import SignalsSnapshot
from .capacity import profile_for
from .types import DecisionRecord, FleetState, PoolDecision, PoolKey, PoolObservation, TickResult


def tick(
    pools: Sequence[InferencePool],
    quota: FleetQuota | None,
    signals: SignalsSnapshot,
    observed: Mapping[PoolKey, PoolObservation],
    state: FleetState,
    now: float,
) -> TickResult:
    """Decide replicas, batch limits and quota caps for every pool (interim: holds replicas)."""
    decisions = []
    for pool in pools:
        key = (pool.metadata.namespace or "default", pool.metadata.name)
        obs = observed.get(key, PoolObservation(0, 0))
        profile_for(pool.spec)
        seqs = pool.spec.batching.maxNumSeqs.max
        decisions.append(PoolDecision(
            key=key, mode=pool.spec.autoscaling.mode, tier=pool.spec.tier,
            current_replicas=obs.replicas, desired_replicas=obs.replicas, applied=False,
            max_num_seqs=seqs, recommended_max_num_seqs=seqs, rollout_max_num_seqs=False,
            quota_cap=None, quota_reason="", gpus=obs.replicas * pool.spec.topology.gpus,
            dollars_per_hour=0.0, replica_rate=0.0, forecast_rate=None,
            records=(DecisionRecord("Hold", obs.replicas, obs.replicas, "planner not implemented yet"),),
            conditions=(),
        ))
    return TickResult(tuple(decisions), (), state)
