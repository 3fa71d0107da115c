"""The operator's own telemetry: Prometheus metrics, and ``/metrics``, ``/healthz``, ``/readyz`` on one port.

The server runs in a daemon thread from process start, so a standby replica (waiting for the Lease)
answers its probes too. ``/healthz`` turns unhealthy when ticks keep failing (the kubelet then
restarts the pod); ``/readyz`` is ready once the process leads and has ticked, or stands by.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.metrics import MetricWrapperBase

REGISTRY = CollectorRegistry(auto_describe=True)
TICK_SECONDS = Histogram("inferencefleet_tick_duration_seconds", "Wall time of one fleet tick.",
                         buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30), registry=REGISTRY)
TICK_FAILURES = Counter("inferencefleet_tick_failures_total", "Fleet ticks that failed as a whole.", registry=REGISTRY)
POOL_FAILURES = Counter("inferencefleet_pool_failures_total", "Pools whose tick step failed (the others went on).",
                        ["namespace", "pool"], registry=REGISTRY)
QUERY_SECONDS = Histogram("inferencefleet_prometheus_query_duration_seconds", "Latency of one Prometheus query.",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5), registry=REGISTRY)
QUERY_FAILURES = Counter("inferencefleet_prometheus_query_failures_total", "Prometheus queries that failed.",
                         registry=REGISTRY)
API_REQUESTS = Counter("inferencefleet_kube_api_requests_total", "Kubernetes API requests by verb.", ["verb"],
                       registry=REGISTRY)
API_ERRORS = Counter("inferencefleet_kube_api_errors_total", "Kubernetes API errors by verb and HTTP status.",
                     ["verb", "code"], registry=REGISTRY)
DECISIONS = Counter("inferencefleet_decisions_total", "Applied or recorded decisions by pool and action.",
                    ["namespace", "pool", "action"], registry=REGISTRY)
POOL_CONDITION = Gauge("inferencefleet_pool_condition", "1 for each pool's current condition status.",
                       ["namespace", "pool", "condition", "status"], registry=REGISTRY)
TIER_GPUS = Gauge("inferencefleet_tier_gpus", "GPUs a tier uses after the last tick.", ["quota", "tier"],
                  registry=REGISTRY)
TIER_DOLLARS = Gauge("inferencefleet_tier_dollars_per_hour", "Dollars per hour a tier costs after the last tick.",
                     ["quota", "tier"], registry=REGISTRY)
TIER_BUDGET_GPUS = Gauge("inferencefleet_tier_budget_gpus", "A tier's GPU limit (absent: unlimited).",
                         ["quota", "tier"], registry=REGISTRY)
TIER_BUDGET_DOLLARS = Gauge("inferencefleet_tier_budget_dollars_per_hour",
                            "A tier's dollars-per-hour limit (absent: unlimited).", ["quota", "tier"],
                            registry=REGISTRY)
LEADER = Gauge("inferencefleet_leader", "1 while this replica holds the leader Lease.", registry=REGISTRY)
POOLS = Gauge("inferencefleet_pools", "InferencePools this operator serves.", registry=REGISTRY)

FAILED_TICKS_UNHEALTHY = 5
"""Consecutive failed ticks after which /healthz fails."""


class Health:
    """What the probes report; updated by the fleet tick and the leader election."""

    def __init__(self) -> None:
        self.failed_ticks = 0
        self.ticked = False
        self.standby = True

    def tick_done(self, ok: bool) -> None:
        self.ticked = True
        self.failed_ticks = 0 if ok else self.failed_ticks + 1

    @property
    def healthy(self) -> bool:
        return self.failed_ticks < FAILED_TICKS_UNHEALTHY

    @property
    def ready(self) -> bool:
        return self.standby or self.ticked


HEALTH = Health()


_POOL_SERIES: dict[tuple[str, str], set[tuple[Any, ...]]] = defaultdict(set)
"""(namespace, pool) -> label values of its series in POOL_FAILURES, DECISIONS and POOL_CONDITION: a pool's
series are found without scanning every pool's (a tick touches each pool once: O(pools), not O(pools^2))."""


def pool_series(metric: MetricWrapperBase, *labels: str) -> Any:
    """``metric.labels(*labels)``, remembered as a series of the pool named by the first two labels."""
    _POOL_SERIES[(labels[0], labels[1])].add((metric, *labels))
    return metric.labels(*labels)


def forget_pool(namespace: str, pool: str) -> None:
    """Drop a deleted pool's labelled series, so that metrics do not grow with pools that come and go."""
    for metric, *labels in _POOL_SERIES.pop((namespace, pool), ()):
        metric.remove(*labels)


def set_pool_conditions(namespace: str, pool: str, conditions: Iterable[tuple[str, str]]) -> None:
    """One series per (condition, status) with value 1 for the current status, others removed."""
    current = {(POOL_CONDITION, namespace, pool, condition, status) for condition, status in conditions}
    series = _POOL_SERIES[(namespace, pool)]
    for stale in [s for s in series if s[0] is POOL_CONDITION and s not in current]:
        POOL_CONDITION.remove(*stale[1:])
        series.discard(stale)
    for _, *labels in current:
        pool_series(POOL_CONDITION, *labels).set(1)


def _app(health: Health) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        checks = {"/healthz": (health.healthy, f"{health.failed_ticks} consecutive failed ticks"),
                  "/readyz": (health.ready, "the first fleet tick has not run yet")}
        if path not in checks:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics, /healthz or /readyz\n"]
        ok, why = checks[path]
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"ok\n" if ok else why.encode() + b"\n"]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: no access log
        pass


def serve(port: int, host: str = "0.0.0.0", health: Health = HEALTH) -> WSGIServer:
    """Serve /metrics, /healthz and /readyz on ``host:port`` in a daemon thread (port 0: any free port)."""
    server = make_server(host, port, _app(health), server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="telemetry", daemon=True).start()
    return server
