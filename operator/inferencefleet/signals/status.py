"""PoolSignals -> what the operator writes in ``status.signals`` (pure).

The MetricsAvailable condition is decided by ``planner.controller`` from the same PoolSignals.
"""

from __future__ import annotations

from datetime import UTC, datetime

from inferencefleet.api.durations import format_duration
from inferencefleet.api.v1alpha1 import SignalsStatus

from .model import PoolSignals, Sample


def rfc3339(at: float) -> str:
    """Unix time as RFC 3339 in UTC with second precision, e.g. '2025-05-01T12:00:00Z'."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(sample: Sample) -> str | None:
    """A latency as a duration string rounded to 0.1 ms, e.g. '812ms'."""
    return format_duration(round(sample.value, 4)) if sample.value is not None else None


def signals_status(signals: PoolSignals) -> SignalsStatus:
    """The ``status.signals`` block: present values only; missing ones are left unset."""
    return SignalsStatus(
        requestRate=signals.request_rate.value,
        outputTokensPerSecond=signals.output_tokens_per_second.value,
        waiting=signals.waiting.value,
        running=signals.running.value,
        kvCacheUsage=signals.kv_cache_usage.value,
        ttftP99=_duration(signals.ttft_p99),
        itlP99=_duration(signals.itl_p99),
        at=rfc3339(signals.at),
    )
