"""SLO headroom: more replicas per unit of demand while the pool's observed p99s break their SLOs.

The capacity model plans for Poisson arrivals. Real traffic bunches inside the rate window (a
minute's average hides ten-second bursts), so p99 TTFT or ITL can exceed the SLO at a replica
count the model called enough. The headroom h divides the planned rate per replica (h = 1.2 asks
for 20% more replicas) and works like an integral term on the SLO: each second with a p99 above its
SLO raises it by RISE_PER_S x (ratio - 1) (the ratio counted up to 2), each second with every p99
below RELAX x its SLO lowers it by FALL_PER_S, and it stays within [1, MAX]. It rises only once the
fleet has settled (the replicas last asked for are ready and a p99 window has passed since): a miss
while replicas are still starting is the cold start's, not a lack of headroom. Rising is fast (a
minute at twice the SLO is worth +0.36) and falling slow (40 minutes from 1.3 back to 1), so the
headroom a bursty pool needed is still there at its next burst.
"""

from __future__ import annotations

import math

MAX = 1.5
"""Most headroom: beyond it more replicas rarely fix a p99 (the engine or the SLO is the problem)."""
RISE_PER_S = 0.006
FALL_PER_S = 0.000125
RELAX = 0.75
"""Headroom is given back only while every observed p99 is below this share of its SLO."""


def updated(headroom: float, ratios: list[float], dt: float, settled: bool) -> float:
    """The headroom after ``dt`` seconds in which the observed p99 / SLO ratios were ``ratios``; it rises
    only when ``settled`` (the replicas last asked for are ready and a p99 window has passed since)."""
    finite = [r for r in ratios if math.isfinite(r)]
    if not finite or dt <= 0:
        return headroom
    worst = max(finite)
    if worst > 1.0:
        if not settled:
            return headroom
        return min(MAX, headroom + RISE_PER_S * min(worst - 1.0, 1.0) * dt)
    if worst < RELAX:
        return max(1.0, headroom - FALL_PER_S * dt)
    return headroom
