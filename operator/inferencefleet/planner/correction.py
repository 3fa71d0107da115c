"""Online correction of the capacity model from observed p99 ITL and TTFT against concurrency.

Each tick that has load and the latency signals yields the multiplier that would have made the
model predict what was observed; the kept multiplier moves a fraction ALPHA towards it (EWMA) and
stays within [LOW, HIGH], so one bad window cannot swing the plan.

The step multiplier comes from p99 ITL, but never goes below 1: the model's p99 step is one filled to
the token budget, an envelope of what the engine's p99 steps carry, so a p99 below it says the
envelope is loose, not that decoding is faster (read as faster decoding, it over-estimated a Mixtral
fleet's capacity by 12%: 94.5% of requests within SLO). A slower engine is learnt; a faster one stays
planned at the profile's speed, which errs on the side of the SLO.

The prefill multiplier is the one whose predicted p99 TTFT (slo.ReplicaModel.ttft_p99, found by
bisection) is the one observed. A p99 TTFT only says something about prefill speed where queueing
for prefill shapes it and prefill speed moves it: below MIN_LOAD (prefill-server utilization) the
p99 is the longest prompts' own prefill (a long-prompt tail read as slow prefill doubled the
multiplier on the code trace), and where a 25% slower prefill moves the predicted p99 by less than
MIN_SENSITIVITY the prefill hides in the decodes' weight pass, so any mismatch reads as an extreme
multiplier.

Both p99s are histogram quantiles (signals.buckets): with the engine's bucket edges known, an
observation only says the p99 lies in its bucket. A prediction inside that bucket learns nothing,
and one outside it is moved to the bucket's nearest edge, not to the interpolated value (vLLM's
50-75 ms ITL bucket read a true 58 ms p99 as 74 ms and taught every fleet a 1.3x slower step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..signals.buckets import LatencyBuckets, bucket
from .slo import Correction, ReplicaModel

ALPHA = 0.2
LOW, HIGH = 0.9, 3.0
"""Bounds of both multipliers. The calibrated H100 prefill throughput spreads +-7% over prompt lengths,
so an engine more than 10% faster is implausible; a p99 TTFT under the M/M/1 model's prediction read
as one turns into over-estimated capacity (with 0.5, a 70B fleet scaled to 14 replicas where 16 were
needed: 98.8% of the conversation hour's requests met the SLOs; with 0.8 a Mixtral fleet 15 for 16:
96.6%; with 0.9 the benchmark's conversation hours meet 99%, 98.7%-99.6% on other rate-scaling seeds;
1.0 buys the 70B hour 99.6% for 1.20x the oracle's GPU-hours)."""
STEP_FLOOR = 1.0
"""An observed p99 ITL only ever slows the modelled step (see the module)."""
MIN_LOAD = 0.3
"""Least modelled prefill-server utilization for a p99 TTFT to update the prefill multiplier."""
MIN_SENSITIVITY = 0.1
"""Least relative rise of the predicted p99 TTFT for a 25% slower prefill for it to update the multiplier."""
BISECTIONS = 24


def _blend(old: float, raw: float) -> float:
    return min(HIGH, max(LOW, old + ALPHA * (min(HIGH, max(LOW, raw)) - old)))


def _ttft(model: ReplicaModel, prefill: float, rate: float) -> float:
    """Predicted p99 TTFT with the prefill multiplier ``prefill`` (infinite when overloaded)."""
    ttft = replace(model, correction=replace(model.correction, prefill=prefill)).ttft_p99(rate)
    return float("inf") if ttft is None else ttft


def _prefill_multiplier(model: ReplicaModel, ttft: float, rate: float) -> float:
    """The prefill multiplier in [LOW, HIGH] whose predicted p99 TTFT at ``rate`` is ``ttft`` (it rises with it)."""
    low, high = LOW, HIGH
    for _ in range(BISECTIONS):
        middle = float((low * high) ** 0.5)
        low, high = (middle, high) if _ttft(model, middle, rate) < ttft else (low, middle)
    return float((low * high) ** 0.5)


def _fit(observed: float, predicted: float, edges: Sequence[float] | None) -> float | None:
    """What the model should have predicted: ``observed`` without bucket edges; with them None when
    ``predicted`` lies in the bucket ``observed`` was read from, else that bucket's edge nearest to it."""
    if edges is None:
        return observed
    lower, upper = bucket(edges, observed)
    if lower <= predicted <= upper:
        return None
    return lower if predicted < lower else upper


def _informative_ttft(model: ReplicaModel, rate: float, predicted: float) -> bool:
    """Whether a p99 TTFT observed at ``rate`` req/s per replica, where the model predicts ``predicted``,
    measures the prefill speed (see the module)."""
    load = model.prefill_load(rate)
    if load is None or load < MIN_LOAD:
        return False
    return _ttft(model, model.correction.prefill * 1.25, rate) >= predicted * (1.0 + MIN_SENSITIVITY)


def corrected(
    model: ReplicaModel,
    itl_p99: float | None,
    ttft_p99: float | None,
    running_per_replica: float,
    rate_per_replica: float,
    buckets: LatencyBuckets | None = None,
) -> Correction:
    """The correction after one observation; unchanged when the replica was idle or a signal is missing.
    ``buckets``: the engine's histogram edges the p99s were read from (None: take them as exact)."""
    correction = model.correction
    batch = round(running_per_replica)
    if batch < 1:
        return correction
    raw_model = replace(model, correction=Correction())
    if itl_p99 is not None and itl_p99 > 0:
        target = _fit(itl_p99, model.itl_p99(batch), None if buckets is None else buckets.itl)
        if target is not None:
            correction = replace(correction, step=_blend(correction.step, max(STEP_FLOOR, target / raw_model.itl_p99(batch))))
    if ttft_p99 is not None and rate_per_replica > 0:
        step_model = replace(model, correction=correction)
        predicted = _ttft(step_model, correction.prefill, rate_per_replica)
        target = _fit(ttft_p99, predicted, None if buckets is None else buckets.ttft)
        if target is not None and _informative_ttft(step_model, rate_per_replica, predicted):
            raw = _prefill_multiplier(step_model, target, rate_per_replica)
            correction = replace(correction, prefill=_blend(correction.prefill, raw))
    return correction
