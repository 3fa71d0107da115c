"""Clock steps between ticks: the planner's windows never collapse, nor freeze, when ``now`` jumps.

The planner measures time from its own memory (the scale-down window, the demand smoothing, the idle
time, the trend warm-up). A clock stepped forward by an hour once emptied the scale-down window in one
tick (11 -> 1 replicas at once); stepped back, the window's entries would lie in the future and hold
for an hour. So a gap between ticks of more than ``SignalTuning.clock_step_factor`` usual intervals, or a
negative one, is a clock step: the memory's times are shifted by it, and the gap counts as one usual
interval. The usual
interval is the last normal gap; after a forward step it doubles (up to the gap), so a real change of
tick cadence is followed within a few ticks. Pod creation times come from the API server's clock and
are not shifted; cold starts are not measured on a step.
"""

from __future__ import annotations

from dataclasses import replace

from .memory import PoolMemory
from .tuning import SignalTuning


def rebased(memory: PoolMemory, now: float, tuning: SignalTuning) -> tuple[PoolMemory, bool]:
    """``memory`` as if the last tick were one usual interval before ``now`` when the clock stepped (and
    True), else unchanged but for the usual interval (and False)."""
    if memory.updated_at is None:
        return memory, False
    gap, usual = now - memory.updated_at, memory.tick_interval
    if gap >= 0 and (not usual or gap <= tuning.clock_step_factor * usual):
        return (replace(memory, tick_interval=gap) if gap > 0 else memory), False
    counted = usual or 0.0
    learned = usual if gap < 0 or usual is None else min(gap, 2 * usual)
    return replace(memory.shifted(gap - counted), tick_interval=learned), True
