"""Demand: the arrival rate behind the signals, and Holt's linear trend on it for irregular tick intervals.

The request rate the engines export counts completions, so during a backlog it shows capacity,
not demand: arrivals = completions + growth of the waiting queue (``arrival_rate``). One tick's
queue growth can be a spike much shorter than a cold start; replicas sized for it are ready only
after it passed (and then serve only new arrivals), so the instantaneous rate counts for at most
SPIKE_MAX x the smoothed level (``spike_bounded``); the level itself still takes the whole spike.

level <- a x observed + (1 - a) x (level + trend x dt),  a = 1 - exp(-dt / LEVEL_TAU_S)
trend <- b x (new level - old level) / dt + (1 - b) x trend,  b = 1 - exp(-dt / TREND_TAU_S)
forecast(h) = max(0, level + slope x D (1 - exp(-h / D)))     (damped trend, D = TREND_REACH_S)

slope = trend / filled, filled <- b + (1 - b) x filled (from 0): the trend starts at 0, a slope never
observed, and for its first TREND_TAU_S it would hold a ramp that starts with the pool's traffic at a
fraction of its slope (bias-corrected like any EWMA started at 0).

The damping keeps a step in demand (which Holt briefly reads as a ramp) from being extrapolated
over a long cold start: a slope is trusted for about a minute ahead, no further.

No slope is learned for a pool's first TREND_WARMUP_S of traffic (``Holt.update(learn_trend=False)``):
the engines count a request when it completes and the rate window fills with traffic, so a pool's
first minutes read as a steep ramp even on flat demand (a Mixtral fleet started into 130 req/s saw
21 -> 141 req/s over four minutes, forecast 190 and ordered 7 replicas it never needed).

Burstiness (``Envelope``): the planned demand's peak (a max that decays with BURST_TAU_S) over its
recent mean (an EWMA, BURST_MEAN_TAU_S); about 1 for steady traffic, large in the silence after a burst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LEVEL_TAU_S = 30.0
"""Time constant of the level: about two scrape-and-rate windows."""
TREND_TAU_S = 120.0
"""Time constant of the trend: slower, so one noisy window does not make a slope."""
TREND_REACH_S = 60.0
"""How far ahead a slope is extrapolated at most."""
BURST_TAU_S = 600.0
"""How slowly the demand peak is forgotten: about ten minutes of traffic."""
BURST_MEAN_TAU_S = 60.0
"""Time constant of the mean the peak is compared with: a silence after a burst raises the ratio."""
TREND_WARMUP_S = 240.0
"""Traffic a pool has served before its slope is learned: two TREND_TAU_S, past the rate window and the
longest requests' completions (tuned on the benchmark's cold starts: 60-180 s kept 1.17x-1.39x the
oracle's GPU-hours on 10-minute conversation slices, 240 s 1.02x-1.17x, longer no further)."""
SPIKE_MAX = 2.25
"""Most the instantaneous arrival rate counts for, in multiples of the smoothed level (tuned on the
Azure code trace: 2 lost attainment on the 8B pool, 2.5 kept a fleet above static peak provisioning)."""


def arrival_rate(completions: float, waiting: float, last_waiting: float | None, dt: float) -> float:
    """Requests arriving per second: completions plus the queue's growth since the last tick (never less)."""
    if last_waiting is None or dt <= 0:
        return completions
    return completions + max(0.0, waiting - last_waiting) / dt


@dataclass(frozen=True)
class Holt:
    """Smoothed level (req/s) and trend (req/s per s) of the arrival rate."""

    level: float
    trend: float
    filled: float = 0.0
    """Share of the trend's EWMA that observations have filled (1 once TREND_TAU_S of history is in)."""

    def update(self, observed: float, dt: float, learn_trend: bool = True) -> Holt:
        """The state after observing ``observed`` req/s ``dt`` seconds after the last update.

        Without ``learn_trend`` only the level moves and the trend stays unstarted (0, nothing filled).
        """
        if dt <= 0:
            return self
        a = 1.0 - math.exp(-dt / LEVEL_TAU_S)
        level = a * observed + (1.0 - a) * max(0.0, self.level + self.trend * dt)
        if not learn_trend:
            return Holt(level, 0.0)
        b = 1.0 - math.exp(-dt / TREND_TAU_S)
        trend = b * (level - self.level) / dt + (1.0 - b) * self.trend
        return Holt(level, trend, b + (1.0 - b) * self.filled)

    @property
    def slope(self) -> float:
        """The trend, bias-corrected for the part of its EWMA not yet filled by observations (req/s per s)."""
        return self.trend / self.filled if self.filled > 0 else 0.0

    def forecast(self, horizon: float) -> float:
        """Arrival rate ``horizon`` seconds ahead."""
        reach = TREND_REACH_S * (1.0 - math.exp(-max(horizon, 0.0) / TREND_REACH_S))
        return max(0.0, self.level + self.slope * reach)


def spike_bounded(arrivals: float, holt: Holt) -> float:
    """The arrival rate to size on now: ``arrivals``, at most SPIKE_MAX x the smoothed level."""
    return min(arrivals, SPIKE_MAX * holt.level)


@dataclass(frozen=True)
class Envelope:
    """Decaying peak and mean of the planned demand (req/s), for the burstiness ratio."""

    peak: float
    mean: float

    def update(self, observed: float, dt: float) -> Envelope:
        """The envelope after observing ``observed`` req/s ``dt`` seconds after the last update."""
        if dt <= 0:
            return Envelope(max(self.peak, observed), self.mean)
        keep, blend = math.exp(-dt / BURST_TAU_S), math.exp(-dt / BURST_MEAN_TAU_S)
        return Envelope(max(observed, self.peak * keep), blend * self.mean + (1.0 - blend) * observed)

    @property
    def burstiness(self) -> float:
        """Peak over mean, at least 1 (1 without traffic)."""
        return max(1.0, self.peak / self.mean) if self.mean > 1e-9 else 1.0
