"""Query results -> SignalsSnapshot: NaN, Inf, empty, stale and failed become missing with a reason, never 0."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest

from inferencefleet.signals.collect import (
    PoolKey,
    QueryFailed,
    QueryResult,
    Series,
    build_snapshot,
    parse_vector,
)
from inferencefleet.signals.model import SIGNAL_NAMES, SignalsSnapshot
from inferencefleet.signals.promql import FRESHNESS, signals

NOW = 1_700_000_000.0
POOL = ("serving", "chat")
SIGNALS = signals()


def vector(*items: tuple[dict[str, str], str]) -> dict[str, object]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [NOW, value]} for labels, value in items
    ]}}


def labels(pool: str = "chat", **extra: str) -> dict[str, str]:
    return {"namespace": "serving", "inferencefleet_io_pool": pool, **extra}


def snapshot(
    results: Mapping[str, QueryResult], stale_after: float = 60.0, pools: list[PoolKey] | None = None
) -> SignalsSnapshot:
    return build_snapshot(SIGNALS, results, NOW, stale_after, pools)


def test_parse_vector_reads_values_special_floats_and_engine() -> None:
    series = parse_vector(vector((labels(inferencefleet_engine="vllm"), "2.5"), (labels("b"), "NaN"),
                                 (labels("c"), "+Inf")))
    assert series[0] == Series(POOL, NOW, 2.5, "vllm")
    assert math.isnan(series[1].value) and math.isinf(series[2].value)


@pytest.mark.parametrize("payload, message", [
    ({"status": "error", "error": "parse error at char 3"}, "parse error at char 3"),
    ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "instant vector"),
    (vector(({"pod": "x"}, "1")), "without namespace/inferencefleet_io_pool"),
    ("<html>", "error"),
])
def test_parse_vector_refuses_what_it_cannot_read(payload: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_vector(payload)


def test_values_nan_inf_empty_and_failed_become_missing_never_zero() -> None:
    results: dict[str, QueryResult] = {
        "running": [Series(POOL, NOW, 4.0, "vllm")],
        "waiting": [Series(POOL, NOW, 0.0, "vllm")],
        "ttft_p99": [Series(POOL, NOW, math.nan, "vllm")],
        "itl_p99": [Series(POOL, NOW, math.inf, "vllm")],
        "e2e_p99": [Series(("other", "pool"), NOW, 1.0, "vllm")],
        "kv_cache_usage": QueryFailed("HTTP 503 from http://prom: overloaded"),
        FRESHNESS: [Series(POOL, NOW - 5, NOW - 5)],
    }
    chat = snapshot(results).for_pool(*POOL)
    assert chat.running.value == 4.0 and chat.running.at == NOW - 5
    assert chat.waiting.value == 0.0
    assert chat.ttft_p99.value is None and "NaN" in (chat.ttft_p99.missing or "")
    assert chat.itl_p99.value is None and "infinite" in (chat.itl_p99.missing or "")
    assert chat.e2e_p99.missing and chat.e2e_p99.missing.startswith("no series for this pool")
    assert chat.kv_cache_usage.missing == "query failed: HTTP 503 from http://prom: overloaded"
    assert chat.request_rate.missing == "query failed: not run"  # absent from the results mapping


def test_stale_pool_has_every_signal_missing() -> None:
    results: dict[str, QueryResult] = {n: [Series(POOL, NOW, 1.0, "vllm")] for n in SIGNAL_NAMES}
    results[FRESHNESS] = [Series(POOL, NOW, NOW - 90)]
    assert snapshot(results, stale_after=120).for_pool(*POOL).missing() == {}
    missing = snapshot(results, stale_after=60).for_pool(*POOL).missing()
    assert set(missing) == set(SIGNAL_NAMES)
    assert set(missing.values()) == {"stale: last scrape 90s ago, older than the 60s staleness bound"}


def test_engine_seen_in_any_query_explains_signals_it_cannot_provide() -> None:
    results: dict[str, QueryResult] = {"running": [Series(POOL, NOW, 2.0, "triton")], "output_tokens_per_second": []}
    chat = snapshot(results).for_pool(*POOL)
    assert chat.output_tokens_per_second.missing and "Triton exports no token counters" in chat.output_tokens_per_second.missing


def test_pools_default_to_every_pool_seen_and_requested_pools_are_always_reported() -> None:
    results: dict[str, QueryResult] = {"running": [Series(("b", "y"), NOW, 1.0), Series(("a", "x"), NOW, 1.0)]}
    assert [p.key for p in snapshot(results).pools] == [("a", "x"), ("b", "y")]
    requested = snapshot(results, pools=[("c", "z")]).pools
    assert [p.key for p in requested] == [("c", "z")]
    assert requested[0].running.missing and requested[0].running.missing.startswith("no series")
