"""Online correction of the capacity model from observed p99 ITL and TTFT against concurrency.

Each tick that has load and the latency signals yields the multiplier that would have made the
model predict what was observed; the kept multiplier moves a fraction ALPHA towards it (EWMA) and
stays within [LOW, HIGH], so one bad window cannot swing the plan.

The prefill multiplier comes from inverting the queueing model for p99 TTFT, which only says
something about prefill speed where queueing shapes the p99 and prefill has replica time to
queue for: below MIN_LOAD the p99 is the longest prompts' own prefill (a long-prompt tail read
as slow prefill doubled it on the code trace), and above MAX_DECODE_SHARE the prefill time left
is a small difference of large terms (any TTFT then reads as a very fast prefill: a Mixtral fleet
learnt a 0.58 multiplier, planned 40% above what it could serve and scaled down into a ramp).
"""

from __future__ import annotations

from dataclasses import replace

from .slo import LN100, Correction, ReplicaModel

ALPHA = 0.2
LOW, HIGH = 0.5, 3.0
MIN_LOAD = 0.3
"""Least modelled load (arrival rate x replica time per request) for a p99 TTFT to update the prefill multiplier."""
MAX_DECODE_SHARE = 0.5
"""Most share of replica time the model gives decoding for a p99 TTFT to update the prefill multiplier."""


def _blend(old: float, raw: float) -> float:
    return min(HIGH, max(LOW, old + ALPHA * (min(HIGH, max(LOW, raw)) - old)))


def corrected(
    model: ReplicaModel,
    itl_p99: float | None,
    ttft_p99: float | None,
    running_per_replica: float,
    rate_per_replica: float,
) -> Correction:
    """The correction after one observation; unchanged when the replica was idle or a signal is missing."""
    correction = model.correction
    batch = round(running_per_replica)
    if batch < 1:
        return correction
    raw_model = replace(model, correction=Correction())
    if itl_p99 is not None and itl_p99 > 0:
        predicted = raw_model.itl_p99(batch)
        correction = replace(correction, step=_blend(correction.step, itl_p99 / predicted))
    if ttft_p99 is not None and rate_per_replica > 0:
        # Invert the M/M/1 p99: the prefill multiplier c with ln(100) / (mu'(c) - rate) + step = observed.
        step_model = replace(raw_model, correction=replace(Correction(), step=correction.step))
        queueing = ttft_p99 - step_model.itl_p99(batch)
        decode_share = rate_per_replica * step_model.decode_cost(batch)
        prefill = raw_model.prefill_service()
        load = decode_share + rate_per_replica * prefill
        if queueing > 0 and decode_share < MAX_DECODE_SHARE and load >= MIN_LOAD:
            raw = (1.0 - decode_share) / (prefill * (rate_per_replica + LN100 / queueing))
            correction = replace(correction, prefill=_blend(correction.prefill, raw))
    return correction
