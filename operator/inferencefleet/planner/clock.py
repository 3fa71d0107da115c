"""Clock steps between ticks: the planner's windows never collapse, nor freeze, when ``now`` jumps.

The planner measures time from its own memory (the scale-down window, the demand smoothing, the idle
time, the trend warm-up). A clock stepped forward by an hour once emptied the scale-down window in one
tick (11 -> 1 replicas at once); stepped back, the window's entries would lie in the future and hold
for an hour. So a gap between ticks of more than STEP_FACTOR usual intervals, or a negative one, is a
clock step: the memory's times are shifted by it, and the gap counts as one usual interval. The usual
interval is the last normal gap; after a forward step it doubles (up to the gap), so a real change of
tick cadence is followed within a few ticks. Pod creation times come from the API server's clock and
are not shifted; cold starts are not measured on a step.
"""

from __future__ import annotations

from dataclasses import replace

from .types import PoolMemory

STEP_FACTOR = 4.0
"""A gap between ticks longer than this many usual intervals is a clock step."""


def rebased(memory: PoolMemory, now: float) -> tuple[PoolMemory, bool]:
    """``memory`` as if the last tick were one usual interval before ``now`` when the clock stepped (and
    True), else unchanged but for the usual interval (and False)."""
    if memory.updated_at is None:
        return memory, False
    gap, usual = now - memory.updated_at, memory.tick_interval
    if gap >= 0 and (not usual or gap <= STEP_FACTOR * usual):
        return (replace(memory, tick_interval=gap) if gap > 0 else memory), False
    counted = usual or 0.0
    shift = gap - counted
    learned = usual if gap < 0 or usual is None else min(gap, 2 * usual)

    def moved(t: float | None) -> float | None:
        return None if t is None else t + shift

    return replace(
        memory,
        tick_interval=learned,
        updated_at=moved(memory.updated_at),
        last_scale_up=moved(memory.last_scale_up),
        last_scale_down=moved(memory.last_scale_down),
        last_request_at=moved(memory.last_request_at),
        traffic_since=moved(memory.traffic_since),
        unsteady_at=moved(memory.unsteady_at),
        last_rollout=moved(memory.last_rollout),
        needs=tuple((t + shift, n) for t, n in memory.needs),
        ready_seen=tuple((t + shift, n) for t, n in memory.ready_seen),
    ), True
