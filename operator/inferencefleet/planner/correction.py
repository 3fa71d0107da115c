"""Online correction of the capacity model from observed p99 ITL and TTFT against concurrency.

Each tick that has load and the latency signals yields the multiplier that would have made the
model predict what was observed; the kept multiplier moves a fraction ALPHA towards it (EWMA) and
stays within [LOW, HIGH], so one bad window cannot swing the plan.
"""

from __future__ import annotations

from dataclasses import replace

from .slo import LN100, Correction, ReplicaModel

ALPHA = 0.2
LOW, HIGH = 0.5, 3.0


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
        decode_share = rate_per_replica * model.workload.output_tokens * step_model.decode_step(batch) / batch
        if queueing > 0 and decode_share < 1:
            raw = (1.0 - decode_share) / (raw_model.prefill_service() * (rate_per_replica + LN100 / queueing))
            correction = replace(correction, prefill=_blend(correction.prefill, raw))
    return correction
