"""SLO headroom: more replicas per unit of demand while the pool's observed p99s break their SLOs.

The capacity model plans for Poisson arrivals. Real traffic bunches inside the rate window (a
minute's average hides ten-second bursts), so p99 TTFT or ITL can exceed the SLO at a replica
count the model called enough. The headroom h divides the planned rate per replica (h = 1.2 asks
for 20% more replicas) and works like an integral term on the SLO: each second with a p99 above its
SLO raises it by rise_per_s x (ratio - 1) (the ratio counted up to 2), each second with every p99
below relax x its SLO lowers it by fall_per_s, and it stays within [1, max] (``tuning.HeadroomTuning``). It rises only once the
fleet has settled (the replicas last asked for are ready and a p99 window has passed since): a miss
while replicas are still starting is the cold start's, not a lack of headroom. Rising is fast (a
minute at twice the SLO is worth +0.36) and falling slow (40 minutes from 1.3 back to 1), so the
headroom a bursty pool needed is still there at its next burst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from .tuning import HeadroomTuning

LIMIT = 10.0
"""Largest headroom a memory may hold: far beyond any tuning's max (a bound on what --state may say)."""


@dataclass(frozen=True)
class SloHeadroom:
    """The headroom h that divides the planned rate per replica (1: none)."""

    value: Annotated[float, Field(ge=1, le=LIMIT)] = 1.0

    def observed(self, ratios: list[float], dt: float, settled: bool, tuning: HeadroomTuning) -> SloHeadroom:
        """The headroom after ``dt`` seconds in which the observed p99 / SLO ratios were ``ratios``; it rises
        only when ``settled`` (the replicas last asked for are ready and a p99 window has passed since)."""
        finite = [r for r in ratios if math.isfinite(r)]
        if not finite or dt <= 0:
            return self
        worst = max(finite)
        if worst > 1.0:
            if not settled:
                return self
            return SloHeadroom(min(tuning.max, self.value + tuning.rise_per_s * min(worst - 1.0, 1.0) * dt))
        if worst < tuning.relax:
            return SloHeadroom(max(1.0, self.value - tuning.fall_per_s * dt))
        return self
