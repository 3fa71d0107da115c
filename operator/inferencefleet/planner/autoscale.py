"""Replica count of one Managed (or Shadow) pool, before the quota.

* Ideal = ceil(demand / planned rate per replica); the planned rate is the SLO rate (slo.py) x
  behavior.targetUtilization / the SLO headroom (headroom.py) / the climb margin of a pool with a load
  test (load_test.py); demand = max(current arrival rate (a spike at
  most ``spike_max`` x the smoothed level), Holt forecast over the cold-start horizon) + waiting
  backlog drained over that horizon (forecast.py).
* Existing replicas count whether ready or still starting (credit for replicas on their way).
* Up at once, by as little as one replica (behavior.scaleUpLimit per tick if set): a replica short
  breaks the SLO for a cold start, one too many costs GPU time until the scale-down gives it back.
* Down to the most replicas needed over the last behavior.scaleDownDelay (unset: one cold start, at
  least 2 minutes: the break-even of keeping an idle replica against restarting it), at most
  behavior.scaleDownLimit per tick, never while the ideal is inside the behavior.tolerance dead band.
  Like HPA's scale-down stabilization window, a falling demand is followed down the window's rolling
  maximum tick by tick, not one step per delay (a 70B fleet stayed 8 replicas above its need for
  minutes after a peak). A pool seen for the first time counts its current replicas as needed then.
* Bursty pools hold longer: the delay grows by one cold start per unit of burstiness (the demand's
  ten-minute peak over its one-minute mean) above 1, at most ``burst_hold_max`` cold starts, so the
  capacity a burst needed is still there when the next one lands after a silence.
* Replicas still starting are given back once the ideal has not needed them for ``give_back_after_s``
  plus the burst hold, on a pool that plans with a climb margin (a load-tested pool, load_test.py): the
  margin already holds spare capacity for demand that climbs during a cold start, and a replica that
  never served costs its start again at most (behavior.scaleDownLimit still bounds each step). Ready
  replicas keep the scale-down delay. A pool without a margin keeps them too: the replicas its noise
  ordered are what its next climb finds ready.
* Never down while a backlog waits (more than ``backlog_per_replica`` requests per ready replica):
  replicas that exist are the only ones that can drain it. A passing backlog holds the count but
  is not remembered as needing it (only its ideal is), or a fleet with a backlog now and then never
  shrinks.
* replicas.min / max always hold; zero only through autoscaling.scaleToZero after idleAfter
  without requests, and the first waiting or arriving request wakes the pool.
* Fail static: without demand signals the count never goes down.

The values named in lower case are fields of ``tuning.ScaleTuning``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from ..api.v1alpha1 import InferencePoolSpec
from .tuning import ScaleTuning

REPLICAS_LIMIT = 2**31 - 1
"""Most replicas a workload holds (an int32): the ideal count never goes beyond it."""


Needs = tuple[tuple[float, Annotated[int, Field(ge=0)]], ...]
"""(time, replicas needed) of recent ticks, oldest first, each needing more than every later one (a
monotonic queue): the most needed since any time is the first entry at or after it."""


@dataclass(frozen=True)
class ScaleHistory:
    """What a pool's memory keeps for its scale decisions."""

    needs: Needs = ()
    """The replicas recent ticks needed: the scale-down goes no lower than the most needed over its delay."""
    last_scale_up: float | None = None
    """When the planner last added replicas (the SLO headroom waits for them to settle)."""
    last_request_at: float | None = None
    """Last tick that saw requests arriving, waiting or running (for scale-to-zero)."""

    def shifted(self, by: float) -> ScaleHistory:
        """The same history with its times moved by ``by`` seconds (a clock step)."""
        return ScaleHistory(tuple((t + by, n) for t, n in self.needs),
                            None if self.last_scale_up is None else self.last_scale_up + by,
                            None if self.last_request_at is None else self.last_request_at + by)


def remembered(needs: Needs, now: float, needed: int, keep: float) -> Needs:
    """``needs`` with ``needed`` at ``now``; entries older than ``keep`` seconds or needing no more are dropped."""
    kept = [(t, n) for t, n in needs if t >= now - keep]
    while kept and kept[-1][1] <= needed:
        kept.pop()
    return (*kept, (now, needed))


def most_needed(needs: Needs, since: float) -> int:
    """The most replicas needed at or after ``since`` (``needs`` ends with the current tick)."""
    return next(n for t, n in needs if t >= since)


def scaled_down_to(needs: Needs, since: float, current: int, limit: int) -> tuple[int, int]:
    """The most replicas needed since ``since``, and the count a scale-down from ``current`` goes to: that, or
    ``current`` less behavior.scaleDownLimit ``limit`` (0: no limit) if that is more."""
    peak = most_needed(needs, since)
    return peak, max(peak, current - limit) if limit else peak


@dataclass(frozen=True)
class ScaleInput:
    """What the autoscaler knows about one pool at this tick."""

    current: int
    """Replicas that exist (ready or starting)."""
    starting: int
    demand: float | None
    """Arrival rate to plan for (req/s); None when the signals are missing or stale."""
    backlog: float
    """Requests waiting now."""
    replica_rate: float
    """Planned req/s per replica (SLO rate x target utilization / SLO headroom / climb margin)."""
    cold_start: float
    """Seconds a new replica takes to become ready."""
    burstiness: float
    """Peak over mean of the recent demand (1: steady)."""
    idle_for: float | None
    """Seconds without any request (None: not idle)."""
    gives_back_starting: bool
    """Whether replicas still starting that the ideal has not needed for ``give_back_after_s`` plus the burst
    hold are given back (a pool whose climb margin holds spare capacity)."""
    needs: Needs
    """The replicas recent ticks needed (from the last outcome; empty for a pool seen for the first time)."""
    now: float
    why_missing: str = ""


@dataclass(frozen=True)
class ScaleOutcome:
    """Wanted replicas, the action, the explanation, and the replicas needed to remember."""

    wanted: int
    action: str
    explanation: str
    needs: Needs


def backlogged(waiting: float, ready: int, tuning: ScaleTuning) -> bool:
    """Whether ``waiting`` requests are a backlog for ``ready`` replicas (more than ``backlog_per_replica`` each)."""
    return waiting > tuning.backlog_per_replica * ready


def planned_rate(slo_rate: float, spec: InferencePoolSpec, margin: float = 1.0) -> float:
    """Req/s planned per replica: the SLO rate x behavior.targetUtilization / ``margin`` (the SLO headroom
    times the climb margin)."""
    return slo_rate * spec.autoscaling.behavior.targetUtilization / margin


def ideal_replicas(demand: float, replica_rate: float) -> int:
    """Replicas needed to serve ``demand`` req/s at ``replica_rate`` each, at most REPLICAS_LIMIT (a demand
    no replica count serves, even an overflowing one, asks for the limit and so for replicas.max)."""
    if demand <= 0:
        return 0
    ratio = demand / replica_rate if replica_rate > 0 else math.inf
    if not ratio < REPLICAS_LIMIT:
        return REPLICAS_LIMIT
    return math.ceil(ratio - 1e-9)


def burst_hold(burstiness: float, cold_start: float, tuning: ScaleTuning) -> float:
    """Seconds a bursty pool holds replicas beyond its wait: one cold start per unit of burstiness above 1, at
    most ``burst_hold_max``, so the capacity a burst needed is still there when the next one lands."""
    return min(burstiness - 1.0, tuning.burst_hold_max) * cold_start


def scale_down_delay(delay: float | None, burstiness: float, cold_start: float, tuning: ScaleTuning) -> float:
    """The configured delay (unset: the cold start, at least ``default_scale_down_delay_s``) plus the burst hold."""
    base = max(tuning.default_scale_down_delay_s, cold_start) if delay is None else delay
    return base + burst_hold(burstiness, cold_start, tuning)


def decide(spec: InferencePoolSpec, given: ScaleInput, tuning: ScaleTuning) -> ScaleOutcome:
    """The replica count this pool wants (before the quota)."""
    bounds, behavior = spec.replicas, spec.autoscaling.behavior
    current = given.current
    to_zero = spec.autoscaling.scaleToZero
    asked = given.backlog > 0 or (given.demand or 0) > 0
    keep = scale_down_delay(behavior.scaleDownDelay, 1.0 + tuning.burst_hold_max, given.cold_start, tuning)
    known = given.needs or ((given.now, current),)

    def outcome(wanted: int, action: str, explanation: str, needed: int) -> ScaleOutcome:
        return ScaleOutcome(wanted, action, explanation, remembered(known, given.now, needed, keep))

    if given.demand is None:
        wanted = min(bounds.max, max(current, bounds.min, 1 if asked else 0))
        return outcome(wanted, "ScaleUp" if wanted > current else "Hold",
                       f"signals missing ({given.why_missing}): never scaling down without them", wanted)
    if current == 0 and not asked and to_zero is not None and bounds.min == 0:
        return outcome(0, "Hold", "scaled to zero; waiting for a request", 0)
    ideal = ideal_replicas(given.demand, given.replica_rate)
    floor = max(bounds.min, 1)
    if to_zero is not None and given.idle_for is not None and given.idle_for >= to_zero.idleAfter:
        floor = 0
    target = min(bounds.max, max(floor, ideal))
    if current == 0 and asked:
        wanted = min(bounds.max, max(target, 1))
        return outcome(wanted, "ScaleUp", "wake from zero on demand", wanted)
    if target == 0 and current > 0:
        return outcome(0, "ScaleDown", f"no requests for {given.idle_for:.0f}s "
                                       f"(scaleToZero after {to_zero.idleAfter:.0f}s)" if to_zero else "idle", 0)
    if current < bounds.min or current > bounds.max:
        return outcome(target, "ScaleUp" if target > current else "ScaleDown",
                       f"replicas {current} outside [{bounds.min}, {bounds.max}]", target)
    ready = current - given.starting
    waiting = backlogged(given.backlog, ready, tuning)
    if given.gives_back_starting and given.starting and target < current and not waiting:
        needs = remembered(known, given.now, target, keep)
        window = tuning.give_back_after_s + burst_hold(given.burstiness, given.cold_start, tuning)
        peak, floor = scaled_down_to(needs, given.now - window, current, behavior.scaleDownLimit)
        kept = max(floor, ready)
        if kept < current:
            given_back = "all" if current - kept == given.starting else f"{current - kept} of"
            reason = (f"{given_back} the {given.starting} replica(s) still starting given back before they serve: "
                      f"at most {peak} needed over the last {window:.0f}s (burstiness {given.burstiness:.1f}; "
                      "the climb margin covers climbs)")
            return ScaleOutcome(kept, "ScaleDown", reason, needs)
    band = behavior.tolerance * current
    if 0 <= current - target <= band:
        return outcome(current, "Hold", f"within the {behavior.tolerance:.0%} dead band", target)
    if target > current:
        limited = min(target, current + behavior.scaleUpLimit) if behavior.scaleUpLimit else target
        return outcome(limited, "ScaleUp", "", target)
    if waiting:
        return outcome(current, "Hold", f"{given.backlog:.0f} requests waiting for {ready} ready replicas: "
                                        "never scaling down while a backlog remains", target)
    needs = remembered(known, given.now, target, keep)
    delay = scale_down_delay(behavior.scaleDownDelay, given.burstiness, given.cold_start, tuning)
    peak, wanted = scaled_down_to(needs, given.now - delay, current, behavior.scaleDownLimit)
    if wanted >= current:
        waited = given.now - max(t for t, n in needs if n >= current)
        return ScaleOutcome(current, "Hold", f"below {current} for {waited:.0f}s of the {delay:.0f}s scale-down "
                                             f"delay (burstiness {given.burstiness:.1f})", needs)
    return ScaleOutcome(wanted, "ScaleDown", f"at most {peak} needed over the last {delay:.0f}s (the scale-down "
                                             f"delay, burstiness {given.burstiness:.1f})", needs)
