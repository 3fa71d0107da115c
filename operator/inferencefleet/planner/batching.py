"""Batching-latency policy: which --max-num-seqs the pods should run with.

Recommended value: the largest batch in [maxNumSeqs.min, maxNumSeqs.max] whose predicted p99 ITL
meets the SLO x ``itl_margin``, rounded down to a multiple of 8 (vLLM captures CUDA graphs at multiples
of 8). Fixed mode runs maxNumSeqs.max. Adaptive mode changes the running value only when
* the value is outside the spec range (the spec changed), or
* the demand signals are present (no restart on missing or stale signals), it moves by at least
  ``min_step``, and either the current value is predicted to break the ITL SLO, or the replicas
  it saves over ``amortization_s`` outweigh a rollout (every replica restarts and serves nothing for
  a cold start) and no rollout happened in the last ``cooldown_s`` or ten cold starts (hysteresis).
Every change and every kept difference from the recommendation carries its reason. The values named
in lower case are fields of ``tuning.BatchingTuning``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from ..api.v1alpha1 import InferencePoolSpec
from .autoscale import ideal_replicas, planned_rate
from .records import DecisionRecord
from .slo import ReplicaModel, itl_batch, slo_capacity
from .tuning import DEFAULT_TUNING, BatchingTuning

GRAPH_STEP = 8
"""vLLM captures CUDA graphs at multiples of this batch size."""
ROLLOUT_SURGE = 1
"""Replicas a rolling restart adds (the rendered workloads' maxSurge, with maxUnavailable 0): serving never
drops below the replicas the SLO needs, and the quota is charged for the extra one while it runs."""


@dataclass(frozen=True)
class RolloutHistory:
    """What a pool's memory keeps for its batching decisions."""

    max_num_seqs: Annotated[int, Field(ge=1)] | None = None
    """The max-num-seqs the planner last asked for."""
    last_rollout: float | None = None
    """When the planner last proposed a max-num-seqs rollout."""

    def shifted(self, by: float) -> RolloutHistory:
        """The same history with its times moved by ``by`` seconds (a clock step)."""
        return self if self.last_rollout is None else RolloutHistory(self.max_num_seqs, self.last_rollout + by)


@dataclass(frozen=True)
class BatchingChoice:
    """The --max-num-seqs to run, the recommendation and whether it needs a rolling restart."""

    max_num_seqs: int
    recommended: int
    rollout: bool
    record: DecisionRecord | None


def recommended_max_num_seqs(spec: InferencePoolSpec, model: ReplicaModel,
                             tuning: BatchingTuning = DEFAULT_TUNING.batching) -> tuple[int, str | None]:
    """Largest batch in the spec range predicted to meet the ITL SLO with margin (the minimum if none),
    and why the SLO is unattainable at any batch, if so."""
    bounds = spec.batching.maxNumSeqs
    best, unattainable = itl_batch(model, spec.autoscaling.slo.itlP99, bounds.max, tuning.itl_margin)
    rounded = best // GRAPH_STEP * GRAPH_STEP if best >= GRAPH_STEP else best
    return min(bounds.max, max(bounds.min, rounded)), unattainable


def choose_max_num_seqs(
    spec: InferencePoolSpec,
    model: ReplicaModel,
    running: int | None,
    demand: float | None,
    replicas: int,
    cold_start: float,
    last_rollout: float | None,
    now: float,
    margin: float = 1.0,
    tuning: BatchingTuning = DEFAULT_TUNING.batching,
) -> BatchingChoice:
    """The batching decision for one pool. ``running`` is the value the pods run (None: no pods); ``margin``
    divides the planned rate per replica (the SLO headroom times the climb margin, as in ``planned_rate``).

    ``demand`` None means the signals are missing: then only a spec change (a running value outside
    the spec range, or Fixed mode's maximum) restarts pods.
    """
    recommended, unattainable = recommended_max_num_seqs(spec, model, tuning)
    bounds = spec.batching.maxNumSeqs
    if spec.batching.mode == "Fixed":
        if running is None or running == bounds.max:
            return BatchingChoice(bounds.max, recommended, False, None)
        return _rollout(running, bounds.max, recommended,
                        f"max-num-seqs {running} -> {bounds.max}: batching.mode Fixed runs batching.maxNumSeqs.max")
    if running is None or replicas == 0:
        record = DecisionRecord("SetMaxNumSeqs", running, recommended,
                                f"max-num-seqs {recommended}: no running pods, so no restart is needed")
        return BatchingChoice(recommended, recommended, False, record)
    if running == recommended:
        return BatchingChoice(running, recommended, False, None)
    slo = spec.autoscaling.slo
    itl_now = model.decode_step(running) if unattainable else model.itl_p99(running)
    broken = itl_now > slo.itlP99
    prefix = f"max-num-seqs {running} -> {recommended}"
    if not bounds.min <= running <= bounds.max:
        why = f"{prefix}: {running} is outside batching.maxNumSeqs [{bounds.min}, {bounds.max}]"
        return _rollout(running, recommended, recommended, why)
    if demand is None:
        return _keep(running, recommended, "signals missing: no restart without them")
    if abs(recommended - running) / running < tuning.min_step:
        return _keep(running, recommended, f"a {abs(recommended - running) / running:.0%} move is below the "
                                           f"{tuning.min_step:.0%} step worth a restart")
    if broken:
        return _rollout(running, recommended, recommended,
                        f"{prefix}: predicted ITL p99 {itl_now * 1e3:.0f}ms at {running} breaks "
                        f"the {slo.itlP99 * 1e3:.0f}ms SLO")
    cooldown = max(tuning.cooldown_s, 10 * cold_start)
    if last_rollout is not None and now - last_rollout < cooldown:
        return _keep(running, recommended, f"last rollout {now - last_rollout:.0f}s ago, within the "
                                           f"{cooldown:.0f}s cooldown")
    saved = (_replicas_needed(model, running, demand, spec, margin, tuning)
             - _replicas_needed(model, recommended, demand, spec, margin, tuning))
    if saved <= 0:
        return _keep(running, recommended, f"{recommended} saves no replicas at {demand:.1f} req/s and "
                                           f"{running} meets the {slo.itlP99 * 1e3:.0f}ms ITL SLO "
                                           f"(predicted p99 {itl_now * 1e3:.0f}ms)")
    gain = saved * tuning.amortization_s
    cost = replicas * cold_start
    if gain <= cost:
        return _keep(running, recommended, f"saves {saved} replicas ({gain:.0f} replica-s per hour), less than "
                                           f"a rollout costs ({replicas} x {cold_start:.0f}s cold start)")
    return _rollout(running, recommended, recommended,
                    f"{prefix}: saves {saved} replicas ({gain:.0f} replica-s per hour) for a "
                    f"rollout of {replicas} x {cold_start:.0f}s cold start")


def _replicas_needed(model: ReplicaModel, max_num_seqs: int, demand: float | None, spec: InferencePoolSpec,
                     margin: float, tuning: BatchingTuning) -> int:
    if not demand:
        return 0
    slo = spec.autoscaling.slo
    capacity = slo_capacity(model, max_num_seqs, slo.itlP99, slo.ttftP99, tuning.itl_margin)
    return ideal_replicas(demand, planned_rate(capacity.rate, spec, margin))


def _rollout(running: int, value: int, recommended: int, reason: str) -> BatchingChoice:
    return BatchingChoice(value, recommended, True, DecisionRecord("SetMaxNumSeqs", running, value, reason))


def hold_rollout(choice: BatchingChoice, running: int, why: str) -> BatchingChoice:
    """Keep ``running`` instead of rolling out ``choice``: the rollout must wait, because ``why``."""
    return _keep(running, choice.recommended, why)


def _keep(running: int, recommended: int, why: str) -> BatchingChoice:
    reason = f"keep max-num-seqs {running} (recommended {recommended}): {why}"
    return BatchingChoice(running, recommended, False, DecisionRecord("KeepMaxNumSeqs", running, running, reason))
