"""Scenario families: seeded traffic generators beside the recorded traces.

Each family is a function of its documented parameters and a seed (same seed, same requests). Rates
are given at the peak, so a benchmark sizes every family the same way (its peak needs N replicas).
- ``long_context``: conversation traffic with long prompts, lognormal (median ``median_prompt``,
  p99 ``p99_prompt``, at most ``max_context`` - output), outputs lognormal (median
  ``median_output``); requests arrive in batches every ``batch_every`` seconds (traces quantized to
  a few seconds: every request of a batch shares its timestamp), Poisson in number.
- ``diurnal``: a day's rate envelope compressed into ``duration`` (an hour, or 10 minutes):
  trough at the start and the end, peak in the middle, trough = ``trough_share`` x peak, shape
  (1 - cos)/2; Poisson arrivals, lengths drawn from a per-request trace.
- ``step``: ``low_share`` x peak, then the peak from ``at`` onwards; lengths from a trace.
- ``ramp``: ``low_share`` x peak rising linearly to the peak over ``ramp`` seconds starting at
  ``at``, then held; lengths from a trace.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from .replica import Request
from .traces import Trace

Z99 = 2.3263
"""The standard normal's 99th percentile."""


def long_context(duration: float, peak_rate: float, seed: int, *, median_prompt: float = 6000,
                 p99_prompt: float = 28_000, median_output: float = 250, max_context: int = 32_768,
                 batch_every: float = 4.0) -> Trace:
    """Long-context conversation traffic at ``peak_rate`` req/s for ``duration`` s (module docstring)."""
    rng = random.Random(seed)
    sigma = math.log(p99_prompt / median_prompt) / Z99
    requests: list[Request] = []
    t = 0.0
    while t < duration:
        for _ in range(_poisson(rng, peak_rate * batch_every)):
            output = max(1, min(4096, round(rng.lognormvariate(math.log(median_output), 0.7))))
            prompt = max(1, min(max_context - output, round(rng.lognormvariate(math.log(median_prompt), sigma))))
            requests.append(Request(len(requests), t, prompt, output))
        t += batch_every
    return Trace(f"long-context seed {seed}", tuple(requests))


def diurnal(duration: float, peak_rate: float, lengths: Trace, seed: int, *, trough_share: float = 0.3) -> Trace:
    """A day's envelope compressed into ``duration`` s, peaking at ``peak_rate`` (module docstring)."""
    def rate(t: float) -> float:
        return peak_rate * (trough_share + (1 - trough_share) * (1 - math.cos(2 * math.pi * t / duration)) / 2)

    return _poisson_trace(f"diurnal {duration / 60:g} min seed {seed}", rate, peak_rate, duration, lengths, seed)


def step(duration: float, peak_rate: float, lengths: Trace, seed: int, *, low_share: float = 0.45,
         at: float = 300.0) -> Trace:
    """``low_share`` x ``peak_rate`` until ``at``, then ``peak_rate`` (module docstring)."""
    return _poisson_trace(f"step seed {seed}", lambda t: peak_rate if t >= at else low_share * peak_rate,
                          peak_rate, duration, lengths, seed)


def ramp(duration: float, peak_rate: float, lengths: Trace, seed: int, *, low_share: float = 0.45,
         at: float = 300.0, ramp: float = 600.0) -> Trace:
    """``low_share`` x ``peak_rate`` rising linearly to ``peak_rate`` over ``ramp`` s from ``at`` (module docstring)."""
    def rate(t: float) -> float:
        return peak_rate * (low_share + (1 - low_share) * min(1.0, max(0.0, (t - at) / ramp)))

    return _poisson_trace(f"ramp seed {seed}", rate, peak_rate, duration, lengths, seed)


def _poisson_trace(name: str, rate: Callable[[float], float], most: float, duration: float, lengths: Trace,
                   seed: int) -> Trace:
    """Poisson arrivals at ``rate(t)`` <= ``most`` (thinning), lengths drawn from ``lengths``."""
    if not lengths.requests:
        raise ValueError(f"{name}: the lengths trace {lengths.name} has no requests")
    rng = random.Random(seed)
    requests: list[Request] = []
    t = rng.expovariate(most)
    while t < duration:
        if rng.random() * most < rate(t):
            shape = lengths.requests[rng.randrange(len(lengths.requests))]
            requests.append(Request(len(requests), t, shape.prompt_tokens, shape.output_tokens))
        t += rng.expovariate(most)
    return Trace(name, tuple(requests))


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson count (Knuth's method for small means, normal approximation above 50)."""
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
