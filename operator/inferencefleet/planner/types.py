"""Inputs and outputs of one planner tick, as frozen dataclasses.

``PoolKey`` is ``(namespace, name)``. Times are Unix seconds; the planner never reads a clock.
``FleetState`` is everything the planner remembers between ticks; it round-trips through JSON
(``to_json`` / ``from_json``) so ``inferencefleet plan --state`` and the operator can keep it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config

from ..api.defaulting import field_path
from ..api.v1alpha1 import Decision, InferencePool, TierStatus
from ..errors import InvalidInput, UserError, shown
from ..signals.model import PoolKey as PoolKey
from . import correction, headroom

Rate = Annotated[float, Field(ge=0)]
"""A rate, level or count the planner only ever remembers as zero or more."""
Count = Annotated[int, Field(ge=0)]
Factor = Annotated[float, Field(ge=correction.LOW, le=correction.HIGH)]


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


@with_config(ConfigDict(allow_inf_nan=False))
@dataclass(frozen=True)
class PoolMemory:
    """What the planner remembers about one pool between ticks (the field types bound what --state may hold)."""

    updated_at: float | None = None
    """Time of the tick that wrote this memory."""
    demand_level: Rate | None = None
    """Holt-smoothed arrival rate (req/s)."""
    demand_trend: float = 0.0
    """Holt-smoothed slope of the arrival rate (req/s per s)."""
    demand_trend_filled: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Share of the slope's EWMA filled by observations (forecast.Holt.filled)."""
    demand_peak: Rate | None = None
    """Decaying peak of the planned demand (req/s), for burstiness."""
    demand_mean: Rate | None = None
    """Long-run mean of the planned demand (req/s), for burstiness."""
    step_correction: Factor = 1.0
    """Observed / predicted p99 inter-token latency, smoothed and bounded (multiplies step time)."""
    prefill_correction: Factor = 1.0
    """Observed / predicted p99 time to first token, smoothed and bounded (multiplies prefill time)."""
    prompt_tokens_rate: Rate | None = None
    output_tokens_rate: Rate | None = None
    completions_rate: Rate | None = None
    """Smoothed token and completion rates (slo.TokenRates): the mean request lengths, kept while the pool is idle."""
    slo_headroom: Annotated[float, Field(ge=1, le=headroom.MAX)] = 1.0
    """Divides the planned rate per replica while observed p99s break the SLOs (planner.headroom)."""
    last_scale_up: float | None = None
    last_scale_down: float | None = None
    needs: tuple[tuple[float, Count], ...] = ()
    """(time, replicas needed) of recent ticks, each needing more than the later ones (autoscale.Needs): the
    scale-down goes no lower than the most needed over its delay."""
    last_request_at: float | None = None
    """Last tick that saw requests arriving, waiting or running (for scale-to-zero)."""
    traffic_since: float | None = None
    """First tick of the pool's current run of ticks with requests (None while idle): the demand's slope is
    learned only TREND_WARMUP_S after it (forecast.py)."""
    cold_start_s: Annotated[float, Field(gt=0)] | None = None
    """Measured replica ready time (smoothed); wins over spec.autoscaling.coldStart once seen."""
    starting_since: tuple[float, ...] = ()
    """Start times of replicas that were starting at the last tick (to measure cold start)."""
    ready_replicas: Count | None = None
    """Ready replicas at the last tick."""
    unsteady_at: float | None = None
    """Last tick with a backlog (autoscale.backlogged), none ready, or a
    ready count other than the tick before's."""
    waiting: Rate | None = None
    """Requests waiting at the last tick (its growth is demand the completion rate does not show)."""
    running: tuple[tuple[float, float], ...] = ()
    """(time, requests running) of the ticks within the last rate window, oldest first: their growth over
    the window is requests admitted, whose prompt tokens the engine has counted, that the completion rate
    does not show yet (slo.TokenRates)."""
    max_num_seqs: Annotated[int, Field(ge=1)] | None = None
    """The max-num-seqs the planner last asked for."""
    last_rollout: float | None = None
    """When the planner last proposed a max-num-seqs rollout."""
    tick_interval: Annotated[float, Field(gt=0)] | None = None
    """The usual time between this pool's ticks: a longer or negative gap is a clock step (planner.clock)."""
    ready_seen: tuple[tuple[float, Count], ...] = ()
    """(time, ready replicas) of recent ticks, fewest first: replicas ready long enough to have been scraped
    (planner.signal_checks)."""
    quota_granted: Count | None = None
    """Replicas the pool's FleetQuota last granted: held as its cap while that quota is missing or invalid."""


_MEMORY = TypeAdapter(PoolMemory)


def parse_json(text: str, source: str) -> Any:
    """The JSON document in ``text``; malformed, too deeply nested or with too long an integer: UserError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{source}: malformed JSON: {error.msg} at line {error.lineno}") from None
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error).split(";")[0]
        raise UserError(f"{source}: unreadable JSON: {reason}") from None

RENAMED = {"queued_at": "unsteady_at"}
"""PoolMemory fields an earlier version wrote under another name: read under the new one."""
RETIRED = frozenset({"prompt_tokens", "output_tokens", "low_since", "low_peak"})
"""PoolMemory fields an earlier version wrote that no longer exist, dropped on reading: the smoothed token
rates replace the last lengths, the replicas needed replace the scale-down window's start and peak
(they start again from the next ticks)."""


@dataclass(frozen=True)
class FleetState:
    """The planner's memory of every pool."""

    pools: Mapping[PoolKey, PoolMemory] = field(default_factory=dict)

    def memory(self, key: PoolKey) -> PoolMemory:
        """The memory of one pool (empty for a pool seen for the first time)."""
        return self.pools.get(key, PoolMemory())

    def to_json(self) -> str:
        """JSON: {"pools": [{"namespace", "name", ...PoolMemory fields}]}, sorted by key."""
        rows = [
            {"namespace": key[0], "name": key[1], **asdict(memory)}
            for key, memory in sorted(self.pools.items())
        ]
        return json.dumps({"pools": rows}, indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "state") -> FleetState:
        """Parse ``to_json`` output; malformed JSON raises UserError, a wrong field InvalidInput naming it."""
        document = parse_json(text, source)
        if not isinstance(document, dict) or not isinstance(document.get("pools"), list):
            raise InvalidInput(f"{source}: must be an object with a 'pools' list (as written by --state-out)")
        pools: dict[PoolKey, PoolMemory] = {}
        for index, row in enumerate(document["pools"]):
            where = f"{source}: pools[{index}]"
            if not isinstance(row, dict) or not {"namespace", "name"} <= row.keys():
                raise InvalidInput(f"{where}: must be an object with 'namespace' and 'name'")
            memory = {k: v for k, v in row.items() if k not in ("namespace", "name")}
            pools[(str(row["namespace"]), str(row["name"]))] = memory_from_fields(memory, where)
        return cls(pools)


def memory_from_fields(row: Mapping[str, Any], where: str) -> PoolMemory:
    """A PoolMemory from its fields (older names read under the new ones); InvalidInput naming a bad field."""
    known = {f.name for f in fields(PoolMemory)}
    row = {RENAMED.get(k, k): v for k, v in row.items() if k not in RETIRED}
    unknown = set(row) - known
    if unknown:
        raise InvalidInput(f"{where}: unknown fields {sorted(unknown)}; allowed: {sorted(known)}")
    try:
        return _MEMORY.validate_json(json.dumps(dict(row)), strict=True)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise InvalidInput(f"{where}.{field_path(first['loc'])}: {first['msg']}, got {shown(first['input'])}") from None


MEMORY_VERSION = 1
"""Version of the encoding in ``encode_memory``; a memory of another version is not read."""


def encode_memory(memory: PoolMemory) -> str:
    """One pool's memory as compact, versioned JSON (kept in the pool's status across operator restarts)."""
    return json.dumps({"v": MEMORY_VERSION, **asdict(memory)}, separators=(",", ":"))


def decode_memory(text: str | None) -> PoolMemory | None:
    """The memory ``encode_memory`` wrote, or None when absent, of another version or malformed."""
    if not text:
        return None
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.pop("v", None) != MEMORY_VERSION:
            return None
        return memory_from_fields(document, "status.plannerMemory")
    except (ValueError, InvalidInput):
        return None


@dataclass(frozen=True)
class DecisionRecord:
    """One action and why: ScaleUp, ScaleDown, Hold, SetMaxNumSeqs, KeepMaxNumSeqs."""

    action: str
    from_: int | None
    to: int | None
    reason: str

    def to_api(self, time: str, applied: bool) -> Decision:
        """The status.decisions entry for this record."""
        return Decision(time=time, action=self.action, from_=self.from_, to=self.to, reason=self.reason,
                        applied=applied)


@dataclass(frozen=True)
class ConditionVerdict:
    """A condition to set on the pool (type, status, reason, message); the setter stamps times."""

    type: str
    status: ConditionStatus
    reason: str
    message: str


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
    replica_rate: float
    """Planned arrival rate one replica serves within the SLOs (req/s)."""
    forecast_rate: float | None
    """Demand forecast over the cold-start horizon (req/s); None when signals are missing."""
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
