"""Demand: the arrival rate behind the signals, and Holt's linear trend on it for irregular tick intervals.

The request rate the engines export counts completions, so during a backlog it shows capacity,
and while batches fill it lags: arrivals = completions + growth of the running requests (those
admitted, not yet complete) + growth of the waiting queue (``arrival_rate``). One tick's
queue growth can be a spike much shorter than a cold start; replicas sized for it are ready only
after it passed (and then serve only new arrivals), so the instantaneous rate counts for at most
``spike_max`` x the smoothed level (``spike_bounded``); the level itself still takes the whole spike.

level <- a x observed + (1 - a) x (level + trend x dt),  a = 1 - exp(-dt / level_tau_s)
trend <- b x (new level - old level) / dt + (1 - b) x trend,  b = 1 - exp(-dt / trend_tau_s)
forecast(h) = max(0, level + slope x D (1 - exp(-h / D)))     (damped trend, D = trend_reach_s)

slope = trend / filled, filled <- b + (1 - b) x filled (from 0): the trend starts at 0, a slope never
observed, and for its first trend_tau_s it would hold a ramp that starts with the pool's traffic at a
fraction of its slope (bias-corrected like any EWMA started at 0).

The damping keeps a step in demand (which Holt briefly reads as a ramp) from being extrapolated
over a long cold start: a slope is trusted for about a minute ahead, no further.

No slope is learned for a pool's first trend_warmup_s of traffic (``Holt.update(learn_trend=False)``):
the engines count a request when it completes and the rate window fills with traffic, so a pool's
first minutes read as a steep ramp even on flat demand (a Mixtral fleet started into 130 req/s saw
21 -> 141 req/s over four minutes, forecast 190 and ordered 7 replicas it never needed).

Burstiness (``Envelope``): the planned demand's peak (a max that decays with burst_tau_s) over its
recent mean (an EWMA, burst_mean_tau_s); about 1 for steady traffic, large in the silence after a burst.

The values named in lower case are fields of ``tuning.ForecastTuning``. ``DemandForecast`` is the
estimator a pool's memory keeps: its ``observed`` step turns one tick's signals into the demand to plan for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Annotated

from pydantic import Field

from .tuning import ForecastTuning


def arrival_rate(completions: float, admitted: float, waiting: float, last_waiting: float | None,
                 dt: float) -> float:
    """Requests arriving per second: those leaving the queue (completions plus the growth of the running
    requests, ``admitted``; never below 0) plus the queue's growth since the last tick (never less)."""
    served = max(0.0, completions + admitted)
    if last_waiting is None or dt <= 0:
        return served
    return served + max(0.0, waiting - last_waiting) / dt


@dataclass(frozen=True)
class Holt:
    """Smoothed level (req/s) and trend (req/s per s) of the arrival rate."""

    level: Annotated[float, Field(ge=0)]
    trend: float
    filled: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Share of the trend's EWMA that observations have filled (1 once trend_tau_s of history is in)."""

    def update(self, observed: float, dt: float, tuning: ForecastTuning, learn_trend: bool = True) -> Holt:
        """The state after observing ``observed`` req/s ``dt`` seconds after the last update.

        Without ``learn_trend`` only the level moves and the trend stays unstarted (0, nothing filled).
        """
        if dt <= 0:
            return self
        a = 1.0 - math.exp(-dt / tuning.level_tau_s)
        level = a * observed + (1.0 - a) * max(0.0, self.level + self.trend * dt)
        if not learn_trend:
            return Holt(level, 0.0)
        b = 1.0 - math.exp(-dt / tuning.trend_tau_s)
        trend = b * (level - self.level) / dt + (1.0 - b) * self.trend
        return Holt(level, trend, b + (1.0 - b) * self.filled)

    @property
    def slope(self) -> float:
        """The trend, bias-corrected for the part of its EWMA not yet filled by observations (req/s per s)."""
        return self.trend / self.filled if self.filled > 0 else 0.0

    def forecast(self, horizon: float, tuning: ForecastTuning) -> float:
        """Arrival rate ``horizon`` seconds ahead."""
        reach = tuning.trend_reach_s * (1.0 - math.exp(-max(horizon, 0.0) / tuning.trend_reach_s))
        return max(0.0, self.level + self.slope * reach)


def spike_bounded(arrivals: float, holt: Holt, tuning: ForecastTuning) -> float:
    """The arrival rate to size on now: ``arrivals``, at most ``spike_max`` x the smoothed level."""
    return min(arrivals, tuning.spike_max * holt.level)


@dataclass(frozen=True)
class Envelope:
    """Decaying peak and mean of the planned demand (req/s), for the burstiness ratio."""

    peak: Annotated[float, Field(ge=0)]
    mean: Annotated[float, Field(ge=0)]

    def update(self, observed: float, dt: float, tuning: ForecastTuning) -> Envelope:
        """The envelope after observing ``observed`` req/s ``dt`` seconds after the last update."""
        if dt <= 0:
            return Envelope(max(self.peak, observed), self.mean)
        keep, blend = math.exp(-dt / tuning.burst_tau_s), math.exp(-dt / tuning.burst_mean_tau_s)
        return Envelope(max(observed, self.peak * keep), blend * self.mean + (1.0 - blend) * observed)

    @property
    def burstiness(self) -> float:
        """Peak over mean, at least 1 (1 without traffic)."""
        return max(1.0, self.peak / self.mean) if self.mean > 1e-9 else 1.0


@dataclass(frozen=True)
class Demand:
    """One tick's demand to plan for (req/s) and how it was read."""

    rate: float
    """Spike-bounded arrivals or their forecast over the horizon, whichever is higher, plus the waiting
    backlog drained over the horizon."""
    arrivals: float
    """Arrivals this tick: completions plus the queue's growth."""
    forecast: float
    """Holt's forecast over the horizon."""
    backlog: float
    """Requests waiting, drained over the horizon (req/s)."""
    trend_warming: bool
    """Traffic is younger than trend_warmup_s: no slope is learned or used yet."""
    burstiness: float
    """The envelope's peak over mean (1: steady)."""


@dataclass(frozen=True)
class DemandForecast:
    """What a pool's memory keeps of its demand: Holt's state, the burst envelope, when its current run of
    traffic started (None while idle) and the requests waiting at the last tick."""

    holt: Holt | None = None
    envelope: Envelope | None = None
    traffic_since: float | None = None
    waiting: Annotated[float, Field(ge=0)] | None = None

    def observed(self, rate: float, admitted: float, waiting: float, active: bool, horizon: float, now: float,
                 dt: float | None, tuning: ForecastTuning) -> tuple[DemandForecast, Demand]:
        """The forecast after a tick with ``rate`` completions/s, ``admitted`` more requests running per
        second and ``waiting`` requests waiting, ``dt`` seconds after the last (None: the first tick), and
        the demand to plan for over ``horizon``."""
        arrivals = arrival_rate(rate, admitted, waiting, self.waiting, dt or 0.0)
        traffic_since = (self.traffic_since if self.traffic_since is not None else now) if active else None
        warming = traffic_since is not None and now - traffic_since < tuning.trend_warmup_s
        holt = Holt(arrivals, 0.0)
        if self.holt is not None and dt is not None:
            holt = self.holt.update(arrivals, dt, tuning, learn_trend=traffic_since is not None and not warming)
        forecast = holt.forecast(horizon, tuning)
        backlog = waiting / horizon
        rate_to_plan = max(spike_bounded(arrivals, holt, tuning), forecast) + backlog
        envelope = Envelope(rate_to_plan, rate_to_plan)
        if self.envelope is not None and dt is not None:
            envelope = self.envelope.update(rate_to_plan, dt, tuning)
        demand = Demand(rate_to_plan, arrivals, forecast, backlog, warming, envelope.burstiness)
        return DemandForecast(holt, envelope, traffic_since, waiting), demand

    def shifted(self, by: float) -> DemandForecast:
        """The same forecast with its times moved by ``by`` seconds (a clock step)."""
        return self if self.traffic_since is None else replace(self, traffic_since=self.traffic_since + by)
