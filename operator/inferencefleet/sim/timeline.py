"""What the planner decided during a simulated run, tick by tick, for the report.

``Timeline.on_tick`` is given to ``InferenceFleetPolicy`` and keeps, from each ``TickResult``:
- every decision that changed something (ScaleUp, ScaleDown, SetMaxNumSeqs) with its reason;
- the --max-num-seqs each pool runs with over time;
- each tier's GPUs, dollars per hour and borrowed GPUs;
- every tick at which a pool was QuotaLimited: the replicas it got, the replicas its demand
  forecast needed (the sizing trace's ``needed``) and the quota's message.
Pure: it only reads the planner's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..api.conditions import QUOTA_LIMITED
from ..api.v1alpha1 import InferencePool
from ..planner.types import TickResult, pool_key

CHANGES = ("ScaleUp", "ScaleDown", "SetMaxNumSeqs")
"""Decision actions that change a pool (Hold and KeepMaxNumSeqs do not)."""


@dataclass(frozen=True)
class Mark:
    """One decision that changed a pool."""

    t: float
    pool: str
    """"namespace/name"."""
    action: str
    from_: int | None
    to: int | None
    reason: str


@dataclass(frozen=True)
class TierSample:
    """One tier's use after a tick."""

    t: float
    tier: str
    gpus: int
    dollars_per_hour: float
    borrowed_gpus: int


@dataclass(frozen=True)
class Shortfall:
    """A tick at which the quota gave a pool fewer replicas than it asked for."""

    t: float
    pool: str
    tier: str
    granted: int
    needed: int
    """Replicas the demand forecast needed (at least ``granted``)."""
    message: str


@dataclass
class Timeline:
    """The planner's decisions over one run (fill it by passing ``on_tick`` to the policy)."""

    marks: list[Mark] = field(default_factory=list)
    batch: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    """"namespace/name" -> (time, --max-num-seqs) at the start and at every change."""
    tiers: list[TierSample] = field(default_factory=list)
    shortfalls: list[Shortfall] = field(default_factory=list)

    ceilings: dict[str, int] = field(default_factory=dict)
    """"namespace/name" -> replicas.max: a shortfall never counts replicas the pool may not have."""

    @classmethod
    def for_pools(cls, pools: Sequence[InferencePool]) -> Timeline:
        """An empty timeline that knows the pools' replica ceilings."""
        return cls(ceilings={"/".join(pool_key(p)): p.spec.replicas.max for p in pools})

    def on_tick(self, now: float, result: TickResult) -> None:
        """Record one tick's outcome."""
        for decision in result.decisions:
            pool = "/".join(decision.key)
            steps = self.batch.setdefault(pool, [])
            if not steps or steps[-1][1] != decision.max_num_seqs:
                steps.append((now, decision.max_num_seqs))
            self.marks.extend(Mark(now, pool, r.action, r.from_, r.to, r.reason)
                              for r in decision.records if r.action in CHANGES)
            limited = decision.condition(QUOTA_LIMITED)
            if limited is not None and limited.status == "True":
                needed = decision.sizing.needed or 0
                needed = min(needed, self.ceilings.get(pool, needed))
                self.shortfalls.append(Shortfall(now, pool, decision.tier, decision.desired_replicas,
                                                 max(needed, decision.desired_replicas), limited.message))
        self.tiers.extend(TierSample(now, t.name, t.gpus, t.dollars_per_hour, t.borrowed_gpus) for t in result.tiers)
