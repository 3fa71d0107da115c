"""Inputs and outputs of one planner tick, as frozen dataclasses.

``PoolKey`` is ``(namespace, name)``. Times are Unix seconds; the planner never reads a clock. What the
planner remembers between ticks is ``memory.FleetState``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..api.durations import format_duration
from ..api.v1alpha1 import InferencePool, SizingStatus, TierStatus
from ..errors import UserError
from ..signals.model import PoolKey as PoolKey
from .records import DecisionRecord

if TYPE_CHECKING:
    from .memory import FleetState


def pool_key(pool: InferencePool) -> PoolKey:
    """(namespace, name) of ``pool``; a pool without a namespace is in 'default'."""
    return (pool.metadata.namespace or "default", pool.metadata.name)

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class PoolObservation:
    """What exists in the cluster for one pool (from the workload, not from Prometheus)."""

    replicas: int
    """Replicas (groups, for multi-node pools) that exist, ready or not."""
    ready_replicas: int
    """Replicas ready to serve."""
    max_num_seqs: int | None = None
    """--max-num-seqs the running pods were started with (None: unknown / no pods)."""
    starting_since: tuple[float, ...] = ()
    """Creation time of each replica that exists but is not ready yet."""
    rolling_out: bool = False
    """A rolling restart is under way (some replicas still run the previous pod template)."""


def parse_json(text: str, source: str) -> Any:
    """The JSON document in ``text``; malformed, too deeply nested or with too long an integer: UserError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{source}: malformed JSON: {error.msg} at line {error.lineno}") from None
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error).split(";")[0]
        raise UserError(f"{source}: unreadable JSON: {reason}") from None


@dataclass(frozen=True)
class ConditionVerdict:
    """A condition to set on the pool (type, status, reason, message); the setter stamps times."""

    type: str
    status: ConditionStatus
    reason: str
    message: str


@dataclass(frozen=True)
class SizingTrace:
    """How one tick sized a pool: demand over a horizon, divided by what one replica serves within the SLOs.

    needed = ceil(demand / replica_rate), replica_rate = slo_rate x target_utilization / (headroom x
    climb_margin), and slo_rate is the capacity model at the request shape, with its load-test calibration
    and learned multipliers, at ``batch``.
    """

    demand: float | None
    """Req/s planned for: max(spike-bounded arrivals, forecast) + backlog (None: signals missing or stale)."""
    arrivals: float | None
    """Req/s arriving: completions plus the waiting queue's growth."""
    forecast: float | None
    """Holt's forecast of the arrivals over the horizon (req/s)."""
    backlog: float | None
    """Requests waiting, drained over the horizon (req/s)."""
    horizon: float
    """Seconds ahead the plan looks: the measured cold start, else spec.autoscaling.coldStart."""
    trend_warming: bool
    """The pool's traffic is younger than the trend warm-up: the forecast has no slope yet."""
    burstiness: float
    """The demand's decaying peak over its recent mean (1: steady); it lengthens the scale-down delay."""
    prompt_tokens: float
    """Mean prompt length sized for (tokens)."""
    output_tokens: float
    """Mean output length sized for (tokens)."""
    step_multiplier: float
    """Learned multiplier on the modelled decode step (observed / predicted p99 ITL)."""
    prefill_multiplier: float
    """Learned multiplier on the modelled prefill time (from the observed p99 TTFT)."""
    batch: int
    """Concurrency per replica within the ITL SLO at the chosen max-num-seqs."""
    slo_rate: float
    """Req/s one replica serves within both SLOs at that batch."""
    target_utilization: float
    """spec.autoscaling.behavior.targetUtilization."""
    headroom: float
    """SLO headroom dividing the planned rate per replica (1: none)."""
    load_test_factor: float | None
    """Factor on the profile's step and prefill time that matches spec.capacity.loadTest (None: no load test)."""
    climb_margin: float
    """Margin dividing the planned rate per replica of a pool with a load test, for demand that climbs during
    a cold start (1: none)."""
    replica_rate: float
    """Req/s planned per replica: slo_rate x target_utilization / (headroom x climb_margin)."""
    needed: int | None
    """Replicas the demand needs at replica_rate (None without demand)."""
    wanted: int
    """Replicas the scale policy wants (bounds, scale-down window, backlog hold), before the quota."""
    quota_cap: int | None
    """Most replicas the quota allows (None: no quota governs the pool)."""
    desired: int
    """Replicas decided."""

    def to_status(self) -> SizingStatus:
        """The pool's status.sizing: rates and lengths to three significant digits, so that a status is written
        for a change a reader would see, not for noise."""
        return SizingStatus(
            demand=_coarse(self.demand), arrivals=_coarse(self.arrivals), forecast=_coarse(self.forecast),
            backlog=_coarse(self.backlog), horizon=format_duration(round(self.horizon)),
            trendWarming=self.trend_warming, burstiness=_coarse(self.burstiness),
            promptTokens=_coarse(self.prompt_tokens), outputTokens=_coarse(self.output_tokens),
            stepMultiplier=_coarse(self.step_multiplier), prefillMultiplier=_coarse(self.prefill_multiplier),
            batch=self.batch, sloRate=_coarse(self.slo_rate), targetUtilization=self.target_utilization,
            headroom=_coarse(self.headroom), loadTestFactor=_coarse(self.load_test_factor),
            climbMargin=_coarse(self.climb_margin), replicaRate=_coarse(self.replica_rate), needed=self.needed,
            wanted=self.wanted, quotaCap=self.quota_cap, desired=self.desired)


def _coarse(value: float | None) -> float | None:
    """``value`` to three significant digits."""
    return None if value is None else float(f"{value:.3g}")


@dataclass(frozen=True)
class PoolDecision:
    """Everything the tick decided for one pool."""

    key: PoolKey
    mode: str
    """spec.autoscaling.mode."""
    tier: str
    current_replicas: int
    """Replicas that exist (observed)."""
    desired_replicas: int
    """Replicas the pool should have (Managed: the planner's decision; External/Off: /scale)."""
    applied: bool
    """True when the operator acts on it (Managed); False in Shadow, External and Off."""
    max_num_seqs: int
    """--max-num-seqs the pods should run with."""
    recommended_max_num_seqs: int
    """Largest batch predicted to meet the ITL SLO with margin."""
    rollout_max_num_seqs: bool
    """True when max_num_seqs differs from what the pods run and a rolling restart is proposed."""
    quota_cap: int | None
    """Most replicas the tier budget allows (None: no FleetQuota governs the pool)."""
    quota_reason: str
    gpus: int
    """GPUs of desired_replicas."""
    dollars_per_hour: float
    """Hourly price of desired_replicas."""
    sizing: SizingTrace
    """Every quantity behind the replica count, from which the scale reason is rendered."""
    records: tuple[DecisionRecord, ...]
    conditions: tuple[ConditionVerdict, ...]

    def condition(self, type_: str) -> ConditionVerdict | None:
        """The verdict for one condition type, if any."""
        return next((c for c in self.conditions if c.type == type_), None)


@dataclass(frozen=True)
class TierUsage:
    """Use of one FleetQuota tier after this tick."""

    name: str
    gpus: int
    dollars_per_hour: float
    borrowed_gpus: int
    """GPUs above the tier's guaranteed share."""
    pools: int
    capped_pools: int
    """Pools held below what they asked for."""

    def to_status(self) -> TierStatus:
        """The FleetQuota status.tiers entry."""
        return TierStatus(name=self.name, gpus=self.gpus, dollarsPerHour=round(self.dollars_per_hour, 4),
                          borrowedGpus=self.borrowed_gpus, pools=self.pools, cappedPools=self.capped_pools)


@dataclass(frozen=True)
class TickResult:
    """The outcome of one tick: per-pool decisions, per-tier usage and the memory for the next tick."""

    decisions: tuple[PoolDecision, ...]
    tiers: tuple[TierUsage, ...]
    state: FleetState
    over_budget: str | None = None
    """Why the fleet is over its budget (pools outside the planner's control use too much), else None."""
    shortfall: str | None = None
    """Which pools the budget leaves below their replicas.min, else None."""

    def decision(self, key: PoolKey) -> PoolDecision:
        """The decision for one pool."""
        return next(d for d in self.decisions if d.key == key)
