"""What the planner remembers between ticks: per pool, one immutable value per estimator.

Each estimator (demand forecast, request shape, online correction, SLO headroom, scale history, cold
start, rollout history) lives in its own module with its own update, and ``PoolMemory`` composes them.
``FleetState`` round-trips through JSON (``to_json`` / ``from_json``) so ``inferencefleet plan --state``
can keep it, and ``encode_memory`` is the compact, versioned form the operator keeps in each pool's
status across restarts. Memories an earlier version wrote (flat fields, version 1) are still read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config

from ..api.defaulting import field_path
from ..errors import InvalidInput, shown
from .autoscale import ScaleHistory
from .batching import RolloutHistory
from .cold_start import ColdStart
from .correction import OnlineCorrection
from .forecast import DemandForecast
from .headroom import SloHeadroom
from .request_shape import RequestShape
from .types import PoolKey, parse_json

Count = Annotated[int, Field(ge=0)]


@with_config(ConfigDict(allow_inf_nan=False, extra="forbid"))
@dataclass(frozen=True)
class PoolMemory:
    """What the planner remembers about one pool between ticks (the field types bound what --state may hold)."""

    updated_at: float | None = None
    """Time of the tick that wrote this memory."""
    tick_interval: Annotated[float, Field(gt=0)] | None = None
    """The usual time between this pool's ticks: a longer or negative gap is a clock step (planner.clock)."""
    demand: DemandForecast = field(default_factory=DemandForecast)
    shape: RequestShape = field(default_factory=RequestShape)
    correction: OnlineCorrection = field(default_factory=OnlineCorrection)
    headroom: SloHeadroom = field(default_factory=SloHeadroom)
    scale: ScaleHistory = field(default_factory=ScaleHistory)
    cold_start: ColdStart = field(default_factory=ColdStart)
    rollout: RolloutHistory = field(default_factory=RolloutHistory)
    ready_seen: tuple[tuple[float, Count], ...] = ()
    """(time, ready replicas) of recent ticks, fewest first: replicas ready long enough to have been scraped
    (planner.signal_checks)."""
    quota_granted: Count | None = None
    """Replicas the pool's FleetQuota last granted: held as its cap while that quota is missing or invalid."""

    def shifted(self, by: float) -> PoolMemory:
        """The same memory with every time moved by ``by`` seconds (a clock step, planner.clock)."""
        return replace(
            self,
            updated_at=None if self.updated_at is None else self.updated_at + by,
            demand=self.demand.shifted(by),
            shape=self.shape.shifted(by),
            correction=self.correction.shifted(by),
            scale=self.scale.shifted(by),
            rollout=self.rollout.shifted(by),
            ready_seen=tuple((t + by, n) for t, n in self.ready_seen),
        )


_MEMORY = TypeAdapter(PoolMemory)


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


FLAT = {
    "updated_at": ("updated_at",), "tick_interval": ("tick_interval",), "ready_seen": ("ready_seen",),
    "quota_granted": ("quota_granted",),
    "demand_level": ("demand", "holt", "level"), "demand_trend": ("demand", "holt", "trend"),
    "demand_trend_filled": ("demand", "holt", "filled"), "demand_peak": ("demand", "envelope", "peak"),
    "demand_mean": ("demand", "envelope", "mean"), "traffic_since": ("demand", "traffic_since"),
    "waiting": ("demand", "waiting"),
    "prompt_tokens_rate": ("shape", "rates", "prompt"), "output_tokens_rate": ("shape", "rates", "output"),
    "completions_rate": ("shape", "rates", "requests"), "running": ("shape", "running"),
    "step_correction": ("correction", "step"), "prefill_correction": ("correction", "prefill"),
    "unsteady_at": ("correction", "unsteady_at"), "queued_at": ("correction", "unsteady_at"),
    "slo_headroom": ("headroom", "value"),
    "needs": ("scale", "needs"), "last_scale_up": ("scale", "last_scale_up"),
    "last_request_at": ("scale", "last_request_at"),
    "cold_start_s": ("cold_start", "seconds"), "starting_since": ("cold_start", "starting_since"),
    "ready_replicas": ("cold_start", "ready_replicas"),
    "max_num_seqs": ("rollout", "max_num_seqs"), "last_rollout": ("rollout", "last_rollout"),
}
"""Where each field of the flat memory earlier versions wrote lives now."""
RETIRED = frozenset({"prompt_tokens", "output_tokens", "low_since", "low_peak", "last_scale_down"})
"""Flat fields earlier versions wrote that no longer exist, dropped on reading: the smoothed token rates
replace the last lengths, the replicas needed replace the scale-down window's start and peak, and the
last scale-down was never read."""


WHOLE = {("demand", "holt"): ("level", "trend"), ("demand", "envelope"): ("peak", "mean"),
         ("shape", "rates"): ("prompt", "output", "requests")}
"""Values a flat memory kept field by field, and the fields each needs: without one (unset or None) the
value is dropped whole, as earlier versions only ever used them together."""


def _from_flat(row: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The nested form of a flat memory."""
    unknown = set(row) - FLAT.keys() - RETIRED
    if unknown:
        raise InvalidInput(f"{where}: unknown fields {sorted(unknown)}; allowed: {sorted(f.name for f in fields(PoolMemory))}")
    nested: dict[str, Any] = {}
    for name, value in row.items():
        if name in RETIRED:
            continue
        *parents, leaf = FLAT[name]
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    for (section, value), needed in WHOLE.items():
        part = nested.get(section, {})
        if value in part and any(part[value].get(name) is None for name in needed):
            del part[value]
    return nested


def memory_from_fields(row: Mapping[str, Any], where: str) -> PoolMemory:
    """A PoolMemory from its fields (a flat memory of an earlier version converted); InvalidInput naming a bad field."""
    current = {f.name for f in fields(PoolMemory)}
    if set(row) - current:
        row = _from_flat(row, where)
    try:
        return _MEMORY.validate_json(json.dumps(dict(row)), strict=True)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise InvalidInput(f"{where}.{field_path(first['loc'])}: {first['msg']}, got {shown(first['input'])}") from None


MEMORY_VERSION = 2
"""Version of the encoding in ``encode_memory`` (1: the flat fields of earlier versions, still read)."""


def encode_memory(memory: PoolMemory) -> str:
    """One pool's memory as compact, versioned JSON (kept in the pool's status across operator restarts)."""
    return json.dumps({"v": MEMORY_VERSION, **asdict(memory)}, separators=(",", ":"))


def _versioned(text: str | None) -> dict[str, Any] | None:
    """The JSON object ``encode_memory`` wrote, without its version field; None when absent, malformed or of
    an unknown version."""
    try:
        document = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(document, dict) or document.pop("v", None) not in (1, MEMORY_VERSION):
        return None
    return document


def memory_time(text: str | None) -> float | None:
    """When the memory ``encode_memory`` wrote was updated (None when absent, of an unknown version or malformed),
    without validating the rest: the operator asks this of every pool at every tick."""
    updated_at = (_versioned(text) or {}).get("updated_at")
    return float(updated_at) if isinstance(updated_at, (int, float)) and math.isfinite(updated_at) else None


def decode_memory(text: str | None) -> PoolMemory | None:
    """The memory ``encode_memory`` wrote, or None when absent, of an unknown version or malformed."""
    document = _versioned(text)
    if document is None:
        return None
    try:
        return memory_from_fields(document, "status.plannerMemory")
    except InvalidInput:
        return None
