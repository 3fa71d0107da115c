"""PoolSignals -> what the operator writes: ``status.signals`` and the MetricsAvailable verdict (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from inferencefleet.api.durations import format_duration
from inferencefleet.api.v1alpha1 import SignalsStatus

from .model import SIGNAL_NAMES, PoolSignals, Sample


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


@dataclass(frozen=True)
class Verdict:
    """Status, reason and message of the MetricsAvailable condition."""

    status: Literal["True", "False"]
    reason: str
    message: str


def metrics_available(signals: PoolSignals, required: Iterable[str] = SIGNAL_NAMES) -> Verdict:
    """MetricsAvailable: True when every ``required`` signal is present; the message names each missing one and why.

    Missing signals outside ``required`` are still named in the message but do not make it False.
    """
    missing = signals.missing()
    needed = [name for name in required if name in missing]
    listing = "; ".join(f"{name}: {why}" for name, why in missing.items())
    if not needed:
        message = f"all required signals present (not available: {listing})" if missing else "all signals present"
        return Verdict("True", "SignalsPresent", message)
    if all(missing[name].startswith("query failed") for name in needed):
        reason = "QueryFailed"
    elif len(missing) == len(SIGNAL_NAMES):
        reason = "NoSeries" if all(why.startswith("no series") for why in missing.values()) else "AllSignalsMissing"
    else:
        reason = "SignalsMissing"
    return Verdict("False", reason, f"missing {len(needed)} of the required signals: {listing}")
