"""PoolSignals -> what the operator writes in ``status.signals`` (pure).

The MetricsAvailable condition is decided by ``planner.controller`` from the same PoolSignals.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from inferencefleet.api.durations import format_duration
from inferencefleet.api.v1alpha1 import SignalsStatus

from .model import PoolSignals, Sample


def rfc3339(at: float) -> str:
    """Unix time as RFC 3339 in UTC with second precision, e.g. '2025-05-01T12:00:00Z'."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


SIGNIFICANT_DIGITS = 2
"""Status values keep two significant digits, as a reader compares them: a pool whose load only jitters
costs no status write (the planner itself sees the exact values)."""


def rounded(value: float | None, digits: int = SIGNIFICANT_DIGITS) -> float | None:
    """``value`` to ``digits`` significant digits (None stays None)."""
    if value is None or value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _duration(sample: Sample) -> str | None:
    """A latency as a duration string to two significant digits, e.g. '810ms'."""
    value = rounded(sample.value)
    return format_duration(value) if value is not None else None


def signals_status(signals: PoolSignals) -> SignalsStatus:
    """The ``status.signals`` block: present values only, rounded; missing ones are left unset."""
    return SignalsStatus(
        requestRate=rounded(signals.request_rate.value),
        outputTokensPerSecond=rounded(signals.output_tokens_per_second.value),
        waiting=rounded(signals.waiting.value),
        running=rounded(signals.running.value),
        kvCacheUsage=rounded(signals.kv_cache_usage.value),
        ttftP99=_duration(signals.ttft_p99),
        itlP99=_duration(signals.itl_p99),
        at=rfc3339(signals.at),
    )
