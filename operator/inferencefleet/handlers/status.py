"""What the operator writes to InferencePool and FleetQuota status (pure: no I/O, no clock).

Conditions follow the API conventions: set on first visit, lastTransitionTime moves only when the
status flips, every condition carries the observedGeneration. ``status_patch`` returns None when
nothing but the signals timestamp changed, so a steady pool costs no API writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..api.conditions import (
    OVER_BUDGET,
    PAUSED,
    PROGRESSING,
    READY,
    RECONCILED,
    SPEC_VALID,
    Condition,
    set_condition,
)
from ..api.v1alpha1 import (
    BatchingStatus,
    CostStatus,
    Decision,
    FleetQuota,
    FleetQuotaStatus,
    InferencePool,
    InferencePoolStatus,
    QuotaStatus,
)
from ..planner.types import ConditionVerdict, PoolDecision, PoolObservation, TickResult
from ..render import labels
from ..signals.cost import pool_cost
from ..signals.model import PoolSignals
from ..signals.status import signals_status
from .workloads import Workload

DECISIONS_KEPT = 5
PAUSED_ANNOTATION = "inferencefleet.io/paused"
PAUSED_VERDICT = ConditionVerdict(PAUSED, "True", "Paused", f"annotation {PAUSED_ANNOTATION}=true: decisions are "
                                  "recorded, nothing is applied or scaled")
ACTIONS = ("ScaleUp", "ScaleDown", "SetMaxNumSeqs")
"""Decision records that change something (Hold and KeepMaxNumSeqs are only reasons)."""


def conditions_of(status: dict[str, Any] | None) -> list[Condition]:
    """The conditions already in an object's status (unparseable entries are dropped)."""
    found = []
    for raw in (status or {}).get("conditions") or []:
        try:
            found.append(Condition.model_validate(raw))
        except ValueError:
            continue
    return found


def with_verdicts(conditions: list[Condition], verdicts: Iterable[ConditionVerdict], now: str,
                  generation: int | None) -> list[Condition]:
    """``conditions`` with every verdict set (change-aware, see set_condition)."""
    for verdict in verdicts:
        conditions, _ = set_condition(conditions, verdict.type, verdict.status, verdict.reason, verdict.message,
                                      now, generation)
    return conditions


def selector(pool: InferencePool) -> str:
    """status.selector for /scale: the pods that serve (all Deployment pods, LeaderWorkerSet leaders)."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.metrics_selector(pool).items()))


def invalid_spec(status: dict[str, Any] | None, reason: str, message: str, generation: int | None,
                 now: str) -> dict[str, Any]:
    """Status of a pool whose spec cannot be served: SpecValid and Ready False, the rest kept."""
    verdicts = [ConditionVerdict(SPEC_VALID, "False", reason, message),
                ConditionVerdict(READY, "False", reason, f"spec is invalid: {message}")]
    conditions = with_verdicts(conditions_of(status), verdicts, now, generation)
    return {**(status or {}), "observedGeneration": generation,
            "conditions": [c.to_wire() for c in conditions]}


def applied_spec(pool: InferencePool, status: dict[str, Any] | None, applied: Sequence[str],
                 now: str) -> dict[str, Any]:
    """Status after the children were applied: SpecValid True; conditions the tick owns start Unknown."""
    generation = pool.metadata.generation
    conditions = conditions_of(status)
    verdicts = [ConditionVerdict(SPEC_VALID, "True", "Valid", f"applied {', '.join(applied)}")]
    known = {c.type for c in conditions}
    verdicts += [ConditionVerdict(t, "Unknown", "AwaitingTick", "the first fleet tick has not run yet")
                 for t in (READY, PROGRESSING) if t not in known]
    conditions = with_verdicts(conditions, verdicts, now, generation)
    return {**(status or {}), "observedGeneration": generation, "selector": selector(pool),
            "conditions": [c.to_wire() for c in conditions]}


def ready_verdict(exists: bool, ready: int, desired: int) -> ConditionVerdict:
    """Ready: the pool serves (at least one replica ready), or is deliberately scaled to zero."""
    if not exists:
        return ConditionVerdict(READY, "False", "WorkloadMissing", "the workload has not been created yet")
    if ready == 0 and desired == 0:
        return ConditionVerdict(READY, "True", "ScaledToZero", "no replicas wanted")
    if ready == 0:
        return ConditionVerdict(READY, "False", "NoReplicaReady", f"0 of {desired} replicas ready")
    return ConditionVerdict(READY, "True", "ReplicasReady", f"{ready} of {desired} replicas ready")


def paused_spec(pool: InferencePool, status: dict[str, Any] | None, now: str) -> dict[str, Any]:
    """Status of a paused pool whose valid spec was not applied: SpecValid True for its generation (so the
    tick keeps planning it in Shadow), Paused True, everything else kept."""
    generation = pool.metadata.generation
    verdicts = [ConditionVerdict(SPEC_VALID, "True", "Valid", "valid; not applied while the pool is paused"),
                PAUSED_VERDICT]
    conditions = with_verdicts(conditions_of(status), verdicts, now, generation)
    return {**(status or {}), "observedGeneration": generation, "conditions": [c.to_wire() for c in conditions]}


def resumed(status: dict[str, Any] | None) -> bool:
    """True while the status still says Paused: the annotation went since the last write."""
    return any(c.type == PAUSED and c.status == "True" for c in conditions_of(status))


def not_reconciled(status: dict[str, Any] | None, reason: str, message: str, generation: int | None,
                   now: str) -> dict[str, Any]:
    """Status of a pool the operator failed to serve (TickFailed, ApplyFailed): Reconciled False with the
    error, everything else kept."""
    verdict = ConditionVerdict(RECONCILED, "False", reason, f"{message} (retrying)")
    conditions = with_verdicts(conditions_of(status), [verdict], now, generation)
    return {**(status or {}), "conditions": [c.to_wire() for c in conditions]}


def decisions_of(status: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The well-formed status.decisions entries (anything else, e.g. a hand-edited entry, is dropped)."""
    found = []
    for raw in (status or {}).get("decisions") or []:
        try:
            found.append(Decision.model_validate(raw).to_wire())
        except ValueError:
            continue
    return found


def new_decisions(old: Sequence[dict[str, Any]], decision: PoolDecision, changed_seqs: bool,
                  time: str) -> list[dict[str, Any]]:
    """status.decisions: the last DECISIONS_KEPT actions, newest last.

    An action is recorded unless it repeats the newest entry of its kind with nothing of that kind in
    between: a pool that goes up, down, up, down, up keeps all five, while a Shadow pool whose
    recommendation stands is recorded once.
    """
    kept = list(old)
    for record in decision.records:
        if record.action not in ACTIONS or record.from_ == record.to:
            continue
        if record.action == "SetMaxNumSeqs" and decision.applied and not changed_seqs:
            continue
        entry = record.to_api(time, decision.applied).to_wire()
        kind = _kind(entry["action"])
        latest = next((e for e in reversed(kept) if _kind(e.get("action")) == kind), None)
        if latest is not None and all(latest.get(k) == entry.get(k) for k in ("action", "from", "to", "applied")):
            continue
        kept.append(entry)
    return kept[-DECISIONS_KEPT:]


def _kind(action: object) -> str:
    """Replicas or batching: ScaleUp and ScaleDown are one kind, so a flip-flop is never folded."""
    return "batching" if action == "SetMaxNumSeqs" else "replicas"


def pool_status(
    pool: InferencePool,
    status: dict[str, Any] | None,
    decision: PoolDecision,
    observation: PoolObservation,
    workload: Workload | None,
    signals: PoolSignals,
    quota: FleetQuota | None,
    changed_seqs: bool,
    now: str,
    paused: bool = False,
) -> dict[str, Any]:
    """The whole status of a valid pool after a tick."""
    generation = pool.metadata.generation
    ready = observation.ready_replicas
    verdicts = [*decision.conditions, ready_verdict(workload is not None, ready, decision.desired_replicas),
                ConditionVerdict(RECONCILED, "True", "TickSucceeded", "the last fleet tick served this pool")]
    conditions = conditions_of(status)
    if paused:
        verdicts.append(PAUSED_VERDICT)
    elif any(c.type == PAUSED for c in conditions):
        verdicts.append(ConditionVerdict(PAUSED, "False", "Resumed", f"annotation {PAUSED_ANNOTATION} removed"))
    conditions = with_verdicts(conditions, verdicts, now, generation)
    batching_reason = next((r.reason for r in decision.records if r.action.endswith("MaxNumSeqs")), None)
    cost = pool_cost(pool, quota, signals).status() if quota is not None else CostStatus(
        gpus=ready * pool.spec.topology.gpus)
    built = InferencePoolStatus(
        replicas=workload.status_replicas if workload is not None else 0,
        readyReplicas=ready,
        desiredReplicas=decision.desired_replicas,
        selector=selector(pool),
        observedGeneration=generation,
        signals=signals_status(signals),
        cost=cost,
        batching=BatchingStatus(maxNumSeqs=observation.max_num_seqs, recommendedMaxNumSeqs=decision.recommended_max_num_seqs,
                                reason=batching_reason),
        quota=QuotaStatus(tier=pool.spec.tier, maxReplicas=decision.quota_cap, reason=decision.quota_reason),
        sizing=decision.sizing.to_status(),
        decisions=[Decision.model_validate(d) for d in new_decisions(decisions_of(status), decision, changed_seqs, now)],
        conditions=conditions,
    )
    return built.to_wire()


def quota_status(quota: FleetQuota, status: dict[str, Any] | None, result: TickResult, now: str) -> dict[str, Any]:
    """FleetQuota status: per-tier use, Ready, OverBudget."""
    generation = quota.metadata.generation
    verdicts = [
        ConditionVerdict(READY, "True", "Valid", f"{len(quota.spec.tiers)} tiers accounted"
                         + (f"; {result.shortfall}" if result.shortfall else "")),
        ConditionVerdict(OVER_BUDGET, "True", "OverBudget", result.over_budget) if result.over_budget
        else ConditionVerdict(OVER_BUDGET, "False", "WithinBudget", "every tier is within its budget"),
    ]
    built = FleetQuotaStatus(
        observedGeneration=generation,
        tiers=[t.to_status() for t in result.tiers],
        conditions=with_verdicts(conditions_of(status), verdicts, now, generation),
    )
    return built.to_wire()


def invalid_quota(status: dict[str, Any] | None, message: str, generation: int | None, now: str) -> dict[str, Any]:
    """FleetQuota status when its spec is invalid: Ready False with the field paths."""
    verdicts = [ConditionVerdict(READY, "False", "InvalidSpec", message)]
    conditions = with_verdicts(conditions_of(status), verdicts, now, generation)
    return {**(status or {}), "observedGeneration": generation, "conditions": [c.to_wire() for c in conditions]}


def status_patch(old: dict[str, Any] | None, new: dict[str, Any], owned: Iterable[str]) -> dict[str, Any] | None:
    """The merge patch from ``old`` to ``new``, or None when only signals.at moved.

    Keys in ``owned`` (the status fields this operator writes) that ``new`` drops become null.
    """
    old = {k: v for k, v in (old or {}).items() if k in set(owned)}

    def comparable(status: dict[str, Any]) -> dict[str, Any]:
        signals = {k: v for k, v in (status.get("signals") or {}).items() if k != "at"}
        return {**status, "signals": signals}

    if comparable(old) == comparable(new):
        return None
    return {**{k: None for k in old if k not in new}, **new}
