"""Tiered GPU and dollar quota over all pools of a FleetQuota (Kueue-like).

Replicas are granted one at a time (a replica costs its GPUs and their hourly price; multi-node
groups are one replica), in three passes:
0. pools the planner does not control (External / Off, or an unknown tier or unpriced GPU type)
   are charged as they are: they run whatever the planner says; a pool whose signals are missing
   is charged the replicas it has, which the quota never takes away (never scale down blind);
1. guaranteed: tiers in priority order (highest first) get replicas while the tier stays within
   its guaranteed share and every limit;
2. borrowing: tiers in priority order take what is left, up to the tier and fleet limits.
Inside a tier the next replica goes to the pool with the smallest granted / wanted share (ties
by namespace/name), so the result never depends on the order pools are listed. A lower tier can
only ever take what higher tiers left or its own guaranteed share: under contention free gives
back before standard, standard before premium.

Fail closed: while the FleetQuota the pools name is missing or invalid (``QuotaUnavailable``), each pool
keeps the replicas the quota last granted it as its cap (``held_grant``), and says so, until a valid
quota returns: a deleted quota never lifts every cap.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..api.v1alpha1 import Budget, FleetQuota, TierSpec
from .types import PoolKey, TierUsage

EPSILON = 1e-9


@dataclass(frozen=True)
class QuotaRequest:
    """What one pool asks of the quota."""

    key: PoolKey
    tier: str
    replicas: int
    """Replicas wanted (after autoscaling and replica bounds)."""
    current: int
    """Replicas that exist now."""
    gpus_per_replica: int
    gpu_type: str
    fixed: bool
    """True when the planner does not control the replicas (External / Off): charged as they are."""
    floor: int = 0
    """Replicas the quota never takes away (at most ``replicas``): those that exist while the pool's signals
    are missing, since a pool is never scaled down without signals, quota or not."""
    minimum: int = 0
    """replicas.min: a budget that cannot grant it says so (``QuotaOutcome.shortfall``)."""
    surge: int = 0
    """Replicas a rolling restart adds for a while (maxSurge: the pool never drops below what it serves with);
    0 when no rollout runs or is planned."""
    rolling: bool = False
    """The rollout already runs: its surge is charged whether or not it fits (it exists)."""


@dataclass(frozen=True)
class QuotaGrant:
    """The quota's answer for one pool."""

    granted: int
    cap: int | None
    """Most replicas the budget allows this pool now (None: unlimited)."""
    limited: bool
    """True when the pool got fewer replicas than it asked for."""
    reason: str
    held: bool = False
    """True when the cap is the last one granted, held while the quota is unavailable."""
    surge_refused: str | None = None
    """Why the budget has no room for the surge of a planned rollout (then it must wait), or None."""


@dataclass(frozen=True)
class QuotaUnavailable:
    """The FleetQuota some pools name, when it cannot govern them: missing, or invalid."""

    name: str
    why: str
    """What is wrong, e.g. 'not found' or 'invalid: spec.tiers[0].name: must not be empty'."""


def held_grant(quota: QuotaUnavailable, wanted: int, last_granted: int | None, current: int,
               fixed: bool = False) -> QuotaGrant:
    """The grant of a pool whose quota is unavailable: at most what the quota last granted it (without a
    grant remembered, the replicas it has), never more; a ``fixed`` pool (External / Off) keeps its count."""
    if fixed:
        return QuotaGrant(wanted, None, False, f"FleetQuota {quota.name!r} is {quota.why}; the planner does "
                          "not control this pool's replicas", held=True)
    cap = current if last_granted is None else last_granted
    granted = min(wanted, cap)
    source = "the replicas it has (no grant remembered)" if last_granted is None else "the last granted cap"
    return QuotaGrant(granted, cap, granted < wanted,
                      f"FleetQuota {quota.name!r} is {quota.why}: holding {source} of {cap} replicas until a valid "
                      "quota returns", held=True)


@dataclass(frozen=True)
class QuotaOutcome:
    grants: Mapping[PoolKey, QuotaGrant]
    tiers: tuple[TierUsage, ...]
    over_budget: str | None
    shortfall: str | None = None
    """Which pools the budget leaves below their replicas.min, if any."""


@dataclass
class _Use:
    gpus: int = 0
    dollars: float = 0.0


def _violation(label: str, budget: Budget, use: _Use, gpus: int, dollars: float) -> str | None:
    """Why adding ``gpus`` / ``dollars`` to ``use`` breaks ``budget``, or None."""
    if budget.gpus is not None and use.gpus + gpus > budget.gpus:
        return f"{label} {budget.gpus} GPUs ({use.gpus} in use)"
    if budget.dollarsPerHour is not None and use.dollars + dollars > budget.dollarsPerHour + EPSILON:
        return f"{label} ${budget.dollarsPerHour:g}/h (${use.dollars:.2f}/h in use)"
    return None


def _headroom(budget: Budget, use: _Use, gpus: int, dollars: float) -> float:
    """How many more replicas of this cost fit ``budget``."""
    room = math.inf
    if budget.gpus is not None and gpus > 0:
        room = min(room, (budget.gpus - use.gpus) // gpus)
    if budget.dollarsPerHour is not None and dollars > 0:
        room = min(room, math.floor((budget.dollarsPerHour - use.dollars + EPSILON) / dollars))
    return max(room, 0)


class _Ledger:
    """Running use of the fleet and of each tier."""

    def __init__(self, quota: FleetQuota) -> None:
        self.quota = quota
        self.fleet = _Use()
        self.tiers: dict[str, _Use] = defaultdict(_Use)
        self.name = quota.metadata.name

    def charge(self, tier: str | None, gpus: int, dollars: float) -> None:
        self.fleet.gpus += gpus
        self.fleet.dollars += dollars
        if tier is not None:
            self.tiers[tier].gpus += gpus
            self.tiers[tier].dollars += dollars

    def refusal(self, tier: TierSpec, gpus: int, dollars: float, guaranteed_only: bool) -> str | None:
        """Why one more replica of this cost is refused, or None when it fits."""
        use = self.tiers[tier.name]
        found = _violation(f"FleetQuota {self.name} limit", self.quota.spec.limits, self.fleet, gpus, dollars)
        found = found or _violation(f"tier {tier.name} limit", tier.limit, use, gpus, dollars)
        if guaranteed_only and found is None:
            if tier.guaranteed.gpus is None and tier.guaranteed.dollarsPerHour is None:
                return f"tier {tier.name} has no guaranteed share"
            found = _violation(f"tier {tier.name} guaranteed", tier.guaranteed, use, gpus, dollars)
        return found

    def room(self, tier: TierSpec, gpus: int, dollars: float) -> float:
        return min(
            _headroom(self.quota.spec.limits, self.fleet, gpus, dollars),
            _headroom(tier.limit, self.tiers[tier.name], gpus, dollars),
        )

    def overrun(self) -> str | None:
        """Which budget the charged use already exceeds, if any."""
        found = _violation(f"FleetQuota {self.name} limit", self.quota.spec.limits, self.fleet, 0, 0.0)
        for tier in self.quota.spec.tiers:
            found = found or _violation(f"tier {tier.name} limit", tier.limit, self.tiers[tier.name], 0, 0.0)
        return found


def ungovernable(quota: FleetQuota, tier: str, gpu_type: str) -> str | None:
    """Why the quota cannot budget a pool of ``tier`` on ``gpu_type`` (unknown tier, unpriced GPU), or None."""
    problem = quota.misfit(tier, gpu_type)
    return None if problem is None else f"{problem[0]}: {problem[1]}"


def allocate(quota: FleetQuota, requests: Sequence[QuotaRequest]) -> QuotaOutcome:
    """Grant replicas to every pool within the fleet and tier budgets."""
    ledger = _Ledger(quota)
    spec = quota.spec
    granted: dict[PoolKey, int] = {}
    reasons: dict[PoolKey, str] = {}
    by_tier: dict[str, list[QuotaRequest]] = defaultdict(list)
    for request in sorted(requests, key=lambda r: r.key):
        tier, price = spec.tier(request.tier), spec.price(request.gpu_type)
        if tier is None or price is None:
            count = request.replicas if request.fixed else min(request.replicas, request.current)
            granted[request.key] = count
            reasons[request.key] = f"{ungovernable(quota, request.tier, request.gpu_type)}; holding at {count} replicas"
            ledger.charge(request.tier if tier else None, count * request.gpus_per_replica,
                          count * request.gpus_per_replica * (price or 0.0))
        elif request.fixed:
            granted[request.key] = request.replicas
            ledger.charge(tier.name, request.replicas * request.gpus_per_replica,
                          request.replicas * request.gpus_per_replica * price)
        else:
            floor = min(request.floor, request.replicas)
            granted[request.key] = floor
            ledger.charge(tier.name, floor * request.gpus_per_replica, floor * request.gpus_per_replica * price)
            by_tier[tier.name].append(request)
    _charge_surges(ledger, [r for r in requests if r.rolling])
    over_budget = ledger.overrun()
    ordered = sorted(spec.tiers, key=lambda t: (-t.priority, t.name))
    for guaranteed_only in (True, False):
        for tier in ordered:
            _fill(ledger, tier, by_tier[tier.name], granted, reasons, guaranteed_only)
    surge_refused = _charge_surges(ledger, [r for r in requests if not r.rolling])
    grants: dict[PoolKey, QuotaGrant] = {}
    for request in requests:
        tier, price = spec.tier(request.tier), spec.price(request.gpu_type)
        got = granted[request.key]
        if request.key in reasons and (tier is None or price is None):
            grants[request.key] = QuotaGrant(got, got, got < request.replicas, reasons[request.key])
        elif tier is not None and price is not None:
            refused = surge_refused.get(request.key)
            gpus = request.gpus_per_replica
            room = ledger.room(tier, gpus, gpus * price)
            cap = None if math.isinf(room) else got + int(room)
            if got < request.replicas and not request.fixed:
                why = reasons.get(request.key, "budget exhausted")
                kept = " (the replicas it has are kept while its signals are missing)" \
                    if got == min(request.floor, request.replicas) > 0 else ""
                grants[request.key] = QuotaGrant(got, got, True, f"capped at {got} by {why}{kept}",
                                                 surge_refused=refused)
            else:
                allows = "no limit" if cap is None else f"up to {cap}"
                grants[request.key] = QuotaGrant(got, cap, False, f"capped by nothing (tier {tier.name} allows {allows})",
                                                 surge_refused=refused)
    short = [r for r in requests if not r.fixed and granted[r.key] < min(r.minimum, r.replicas)]
    shortfall = None if not short else (
        f"the budget cannot fit every pool's replicas.min: {len(short)} pool(s) below it, "
        + ", ".join(f"{r.key[0]}/{r.key[1]} ({granted[r.key]} of min {r.minimum})" for r in short[:5])
        + (", ..." if len(short) > 5 else ""))
    return QuotaOutcome(grants, _usage(spec.tiers, requests, granted, ledger), over_budget, shortfall)


def _charge_surges(ledger: _Ledger, requests: Sequence[QuotaRequest]) -> dict[PoolKey, str]:
    """Charge each rollout's surge replicas: a running one always (it exists; before any pool grows), a planned one
    where the budget has room once every pool has its replicas; why not, by pool, where it has none."""
    spec = ledger.quota.spec
    refused = {}
    for request in sorted(requests, key=lambda r: r.key):
        tier, price = spec.tier(request.tier), spec.price(request.gpu_type)
        if not request.surge or request.fixed or tier is None or price is None:
            continue
        gpus = request.surge * request.gpus_per_replica
        why = None if request.rolling else ledger.refusal(tier, gpus, gpus * price, guaranteed_only=False)
        if why is None:
            ledger.charge(tier.name, gpus, gpus * price)
        else:
            refused[request.key] = why
    return refused


def _fill(
    ledger: _Ledger,
    tier: TierSpec,
    requests: list[QuotaRequest],
    granted: dict[PoolKey, int],
    reasons: dict[PoolKey, str],
    guaranteed_only: bool,
) -> None:
    """Grant replicas to one tier's pools, smallest granted/wanted share first, until nothing fits."""
    price = ledger.quota.spec.price
    heap = [(granted[r.key] / r.replicas, r.key, r) for r in requests if granted[r.key] < r.replicas]
    heapq.heapify(heap)
    while heap:
        _, key, request = heapq.heappop(heap)
        gpus = request.gpus_per_replica
        dollars = gpus * (price(request.gpu_type) or 0.0)
        refusal = ledger.refusal(tier, gpus, dollars, guaranteed_only)
        if refusal is not None:
            reasons[key] = refusal
            continue
        ledger.charge(tier.name, gpus, dollars)
        granted[key] += 1
        if granted[key] < request.replicas:
            heapq.heappush(heap, (granted[key] / request.replicas, key, request))


def _usage(
    tiers: Sequence[TierSpec], requests: Sequence[QuotaRequest], granted: Mapping[PoolKey, int], ledger: _Ledger
) -> tuple[TierUsage, ...]:
    counts: dict[str, int] = defaultdict(int)
    capped: dict[str, int] = defaultdict(int)
    for request in requests:
        counts[request.tier] += 1
        capped[request.tier] += granted[request.key] < request.replicas
    usage = []
    for tier in tiers:
        use = ledger.tiers[tier.name]
        if tier.guaranteed.gpus is not None:
            borrowed = max(0, use.gpus - tier.guaranteed.gpus)
        elif tier.guaranteed.dollarsPerHour is not None and use.gpus:
            over = max(0.0, use.dollars - tier.guaranteed.dollarsPerHour)
            borrowed = math.ceil(over / (use.dollars / use.gpus) - EPSILON)
        else:
            borrowed = use.gpus
        usage.append(TierUsage(tier.name, use.gpus, use.dollars, borrowed, counts[tier.name], capped[tier.name]))
    return tuple(usage)
