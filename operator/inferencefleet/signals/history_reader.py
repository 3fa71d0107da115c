"""Read every pool's history from Prometheus with range queries of the operator's own PromQL.

``read_history`` asks (through ``prometheus_api_client``) for every pool's request rate, prompt
and output token rates, ready replicas and p99 TTFT and ITL (``promql.query``, the queries the
operator runs each tick) on a grid of ``step`` seconds, rates and quantiles over ``window``.
Prometheus's ``rate`` handles counter resets; a step with too few samples in its window has no value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from inferencefleet.api.durations import format_duration
from inferencefleet.errors import UserError
from inferencefleet.redaction import redact, redact_url, remember, remember_url

from .history import HISTORY_SIGNALS, PoolHistory, from_matrices
from .model import PoolKey
from .promql import query, signals


def read_history(url: str, start: float, end: float, step: float, *, namespace: str | None = None,
                 window: float = 60.0, headers: Mapping[str, str] | None = None, verify: bool = True,
                 timeout: float = 30.0) -> dict[PoolKey, PoolHistory]:
    """Range-query every HISTORY_SIGNALS signal of every pool (in ``namespace``) from ``start`` to ``end``."""
    from prometheus_api_client import PrometheusConnect
    from prometheus_api_client.exceptions import PrometheusApiClientException

    remember_url(url)
    remember(*(value.removeprefix("Bearer ") for value in (headers or {}).values()))
    if not url.startswith(("http://", "https://")):
        raise UserError(f"--prometheus: {redact_url(url)!r} must start with http:// or https://")
    client = PrometheusConnect(url=url, headers=dict(headers or {}), disable_ssl=not verify)
    wanted = {s.name: s for s in signals() if s.name in HISTORY_SIGNALS}
    begin, finish = (datetime.fromtimestamp(t, UTC) for t in (start, end))
    matrices = {}
    for name, signal in wanted.items():
        try:
            matrices[name] = client.custom_query_range(query(signal, namespace, window), begin, finish,
                                                       format_duration(step), timeout=timeout)
        except (PrometheusApiClientException, OSError) as error:  # requests' errors are OSErrors
            detail = redact(" ".join(str(error).split()))[:300]
            raise UserError(f"--prometheus {redact_url(url)}: range query for {name} failed: {detail}") from None
    return from_matrices(matrices, start, end, step)
