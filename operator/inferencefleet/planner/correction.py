"""Online correction of the capacity model from observed p99 ITL and TTFT against concurrency.

Each tick that has load and the latency signals yields the multiplier that would have made the
model predict what was observed; the kept multiplier moves a fraction ``alpha`` towards it (EWMA) and
stays within [``low``, ``high``], so one bad window cannot swing the plan (``tuning.CorrectionTuning``).
Only a steady pool teaches: one without a backlog and with the same ready replicas for a whole
latency window (``SignalTuning.latency_window_s``), since the p99s are quantiles over a window that
still carries the waits or the load per replica of before.

The step multiplier comes from p99 ITL, but never goes below 1: the model's p99 step is one filled to
the token budget, an envelope of what the engine's p99 steps carry, so a p99 below it says the
envelope is loose, not that decoding is faster (read as faster decoding, it over-estimated a Mixtral
fleet's capacity by 12%: 94.5% of requests within SLO). A slower engine is learnt; a faster one stays
planned at the profile's speed, which errs on the side of the SLO.

The prefill multiplier is the one whose predicted p99 TTFT (slo.ReplicaModel.ttft_p99, found by
bisection) is the one observed. A p99 TTFT only says something about prefill speed where queueing
for prefill shapes it and prefill speed moves it: below ``min_load`` (prefill-server utilization) the
p99 is the longest prompts' own prefill (a long-prompt tail read as slow prefill doubled the
multiplier on the code trace), and where a 25% slower prefill moves the predicted p99 by less than
``min_sensitivity`` the prefill hides in the decodes' weight pass, so any mismatch reads as an extreme
multiplier.

Both p99s are histogram quantiles (signals.buckets): with the engine's bucket edges known, an
observation only says the p99 lies in its bucket. A prediction inside that bucket learns nothing,
and one outside it is moved to the bucket's nearest edge, not to the interpolated value (vLLM's
50-75 ms ITL bucket read a true 58 ms p99 as 74 ms and taught every fleet a 1.3x slower step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated

from pydantic import Field

from ..signals.buckets import LatencyBuckets, bucket
from .slo import Correction, ReplicaModel
from .tuning import CorrectionTuning

LIMITS = (0.1, 10.0)
"""Widest multipliers a memory may hold, whatever the tuning (a bound on what --state may say)."""
Factor = Annotated[float, Field(ge=LIMITS[0], le=LIMITS[1])]
BISECTIONS = 24


def _blend(old: float, raw: float, tuning: CorrectionTuning) -> float:
    low, high = tuning.low, tuning.high
    return min(high, max(low, old + tuning.alpha * (min(high, max(low, raw)) - old)))


def _ttft(model: ReplicaModel, prefill: float, rate: float) -> float:
    """Predicted p99 TTFT with the prefill multiplier ``prefill`` (infinite when overloaded)."""
    ttft = replace(model, correction=replace(model.correction, prefill=prefill)).ttft_p99(rate)
    return float("inf") if ttft is None else ttft


def _prefill_multiplier(model: ReplicaModel, ttft: float, rate: float, tuning: CorrectionTuning) -> float:
    """The prefill multiplier in [low, high] whose predicted p99 TTFT at ``rate`` is ``ttft`` (it rises with it)."""
    low, high = tuning.low, tuning.high
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


def _informative_ttft(model: ReplicaModel, rate: float, predicted: float, tuning: CorrectionTuning) -> bool:
    """Whether a p99 TTFT observed at ``rate`` req/s per replica, where the model predicts ``predicted``,
    measures the prefill speed (see the module)."""
    load = model.prefill_load(rate)
    if load is None or load < tuning.min_load:
        return False
    return _ttft(model, model.correction.prefill * 1.25, rate) >= predicted * (1.0 + tuning.min_sensitivity)


def corrected(
    model: ReplicaModel,
    itl_p99: float | None,
    ttft_p99: float | None,
    running_per_replica: float,
    rate_per_replica: float,
    tuning: CorrectionTuning,
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
            raw = max(tuning.step_floor, target / raw_model.itl_p99(batch))
            correction = replace(correction, step=_blend(correction.step, raw, tuning))
    if ttft_p99 is not None and rate_per_replica > 0:
        step_model = replace(model, correction=correction)
        predicted = _ttft(step_model, correction.prefill, rate_per_replica)
        target = _fit(ttft_p99, predicted, None if buckets is None else buckets.ttft)
        if target is not None and _informative_ttft(step_model, rate_per_replica, predicted, tuning):
            raw = _prefill_multiplier(step_model, target, rate_per_replica, tuning)
            correction = replace(correction, prefill=_blend(correction.prefill, raw, tuning))
    return correction


@dataclass(frozen=True)
class OnlineCorrection:
    """What a pool's memory keeps of the correction: both multipliers and the last unsteady tick (a
    backlog, no replica ready, or a ready count other than the tick before's)."""

    step: Factor = 1.0
    """Observed / predicted p99 inter-token latency, smoothed and bounded (multiplies step time)."""
    prefill: Factor = 1.0
    """Observed / predicted p99 time to first token, smoothed and bounded (multiplies prefill time)."""
    unsteady_at: float | None = None

    @property
    def multipliers(self) -> Correction:
        """The multipliers the capacity model applies."""
        return Correction(self.step, self.prefill)

    def observed(self, model: ReplicaModel, unsteady: bool, now: float, itl_p99: float | None,
                 ttft_p99: float | None, running_per_replica: float, rate_per_replica: float,
                 tuning: CorrectionTuning, window: float, buckets: LatencyBuckets | None = None) -> OnlineCorrection:
        """The correction after a tick with fresh signals (``unsteady``: see the class); the p99s of a pool
        steady for the latency ``window`` update the multipliers of ``model`` (which carries the current ones)."""
        marked = replace(self, unsteady_at=now) if unsteady else self
        if marked.unsteady_at is not None and now - marked.unsteady_at < window:
            return marked
        learned = corrected(model, itl_p99, ttft_p99, running_per_replica, rate_per_replica, tuning, buckets)
        return replace(marked, step=learned.step, prefill=learned.prefill)

    def shifted(self, by: float) -> OnlineCorrection:
        """The same correction with its times moved by ``by`` seconds (a clock step)."""
        return self if self.unsteady_at is None else replace(self, unsteady_at=self.unsteady_at + by)
