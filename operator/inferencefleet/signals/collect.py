"""Prometheus query results -> SignalsSnapshot (pure).

Every value is checked here and only here: NaN, infinities, a pool absent from a result, a failed
query and a pool whose last scrape is older than the staleness bound all become
``Sample.absent(reason)``, never zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import PoolKey, PoolSignals, Sample, SignalsSnapshot
from .promql import ENGINE_LABEL, FRESHNESS, NAMESPACE_LABEL, POOL_LABEL, Signal


@dataclass(frozen=True)
class Series:
    """One element of an instant vector, keyed by pool."""

    pool: PoolKey
    at: float
    value: float
    engine: str | None = None


@dataclass(frozen=True)
class QueryFailed:
    """A query that returned no usable answer, and why."""

    reason: str


QueryResult = list[Series] | QueryFailed


def _instant_vector(payload: Any) -> list[Any]:
    """The result items of a Prometheus ``/api/v1/query`` JSON answer; ValueError if it is not an instant vector."""
    if not isinstance(payload, dict) or payload.get("status") != "success":
        error = payload.get("error") if isinstance(payload, dict) else None
        raise ValueError(f"Prometheus answered an error: {error or payload!r}")
    data = payload.get("data") or {}
    if data.get("resultType") != "vector":
        raise ValueError(f"expected an instant vector, got resultType {data.get('resultType')!r}")
    return list(data.get("result", []))


def parse_by_pod(payload: Any) -> dict[str, float]:
    """Pod name -> value of a query aggregated ``by (pod)``; ValueError if the answer is not one."""
    values = {}
    for item in _instant_vector(payload):
        pod, (_, text) = item["metric"].get("pod"), item["value"]
        if not pod:
            raise ValueError(f"series without a pod label: {item['metric']}")
        if math.isfinite(value := float(text)):  # a non-finite gauge is no reading: the pod counts as unknown
            values[str(pod)] = value
    return values


def parse_vector(payload: Any) -> list[Series]:
    """The series of a Prometheus ``/api/v1/query`` JSON answer; ValueError if it is not an instant vector."""
    series = []
    for item in _instant_vector(payload):
        labels, (at, text) = item["metric"], item["value"]
        if NAMESPACE_LABEL not in labels or POOL_LABEL not in labels:
            raise ValueError(f"series without {NAMESPACE_LABEL}/{POOL_LABEL} labels: {labels}")
        key = (labels[NAMESPACE_LABEL], labels[POOL_LABEL])
        series.append(Series(key, float(at), float(text), labels.get(ENGINE_LABEL)))
    return series


def _engines(results: Mapping[str, QueryResult]) -> dict[PoolKey, str]:
    """The engine that answered for each pool in any query."""
    engines: dict[PoolKey, str] = {}
    for result in results.values():
        if not isinstance(result, QueryFailed):
            engines.update((s.pool, s.engine) for s in result if s.engine)
    return engines


def _stale(last_scrape: float | None, now: float, stale_after: float) -> str | None:
    if last_scrape is not None and now - last_scrape > stale_after:
        return (f"stale: last scrape {now - last_scrape:.0f}s ago, "
                f"older than the {stale_after:g}s staleness bound")
    return None


def _sample(signal: Signal, values: dict[PoolKey, Series] | QueryFailed, pool: PoolKey, engine: str | None,
            scraped: float | None) -> Sample:
    """The pool's value of ``signal``, stamped with the pool's last scrape time when known."""
    if isinstance(values, QueryFailed):
        return Sample.absent(f"query failed: {values.reason}")
    found = values.get(pool)
    if found is not None:
        return Sample.of(found.value, scraped if scraped is not None else found.at)
    unavailable = signal.reason_unavailable(engine) if engine else None
    return Sample.absent(unavailable or signal.no_series)


def build_snapshot(
    signals: Sequence[Signal],
    results: Mapping[str, QueryResult],
    now: float,
    stale_after: float,
    pools: Iterable[PoolKey] | None = None,
) -> SignalsSnapshot:
    """One PoolSignals per pool in ``pools`` (default: every pool seen in any result), sorted by key.

    ``results`` maps each signal's name (and ``FRESHNESS``) to its query result; a result missing
    from the mapping counts as a failed query.
    """
    results = {**{s.name: QueryFailed("not run") for s in signals}, **results}
    freshness = results.get(FRESHNESS)
    last_scrape = {} if isinstance(freshness, QueryFailed) or freshness is None else {
        s.pool: s.value for s in freshness
    }
    engines = _engines(results)
    by_pool = {name: r if isinstance(r, QueryFailed) else {s.pool: s for s in r} for name, r in results.items()}
    if pools is None:
        pools = {s.pool for r in results.values() if not isinstance(r, QueryFailed) for s in r}
    snapshot = []
    for pool in sorted(set(pools)):
        scraped = last_scrape.get(pool)
        stale = _stale(scraped, now, stale_after)
        samples = {
            s.name: Sample.absent(stale) if stale else _sample(s, by_pool[s.name], pool, engines.get(pool), scraped)
            for s in signals
        }
        snapshot.append(PoolSignals(namespace=pool[0], pool=pool[1], at=now, **samples))
    return SignalsSnapshot(at=now, pools=snapshot)
