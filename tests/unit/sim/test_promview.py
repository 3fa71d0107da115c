"""PromView: rates and histogram quantiles over the scrape window, as Prometheus computes them."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from inferencefleet.signals.buckets import ITL_EDGES, TTFT_EDGES
from inferencefleet.sim.histogram import Histogram, histogram_quantile
from inferencefleet.sim.promview import Counters, PoolScrape, PromView
from inferencefleet.sim.replica import ReplicaStats

KEY = ("serving", "pool")


def reference_quantile(q: float, edges: tuple[float, ...], observations: list[float]) -> float:
    """histogram_quantile computed directly: cumulative counts per le edge, interpolate in the rank's bucket."""
    values = np.sort(np.asarray(observations))
    cumulative = [int(np.searchsorted(values, edge, side="right")) for edge in edges]
    rank = q * len(values)
    for i, count in enumerate(cumulative):
        if count >= rank:
            below = cumulative[i - 1] if i else 0
            start = edges[i - 1] if i else 0.0
            return start + (edges[i] - start) * (rank - below) / (count - below)
    return edges[-1]


def scrape(at: float, stats: ReplicaStats, running: float = 0, waiting: float = 0) -> dict:
    return {KEY: PoolScrape(at, Counters.total(Counters(), [stats]), running, waiting, 0.5, 2, 2)}


def test_quantiles_over_the_window_match_a_direct_computation() -> None:
    rng = random.Random(5)
    stats, view = ReplicaStats(), PromView(window=60)
    for value in (rng.uniform(5, 50) for _ in range(500)):  # before the window: must not count
        stats.ttft.observe(value)
    view.scrape(scrape(0.0, stats))
    ttfts = [rng.lognormvariate(-1.5, 1.0) for _ in range(3000)]
    itls = [rng.uniform(0.005, 0.3) for _ in range(3000)]
    for t, i in zip(ttfts, itls, strict=True):
        stats.ttft.observe(t)
        stats.itl.observe(i)
    view.scrape(scrape(30.0, stats))
    pool = view.snapshot(30.0).for_pool(*KEY)
    for q, sample in ((0.5, pool.ttft_p50), (0.99, pool.ttft_p99)):
        assert sample.value == pytest.approx(reference_quantile(q, TTFT_EDGES, ttfts), rel=1e-9)
    for q, sample in ((0.5, pool.itl_p50), (0.99, pool.itl_p99)):
        assert sample.value == pytest.approx(reference_quantile(q, ITL_EDGES, itls), rel=1e-9)
    # the quantile lies in the bucket that holds the true empirical p99
    true_p99 = float(np.quantile(ttfts, 0.99))
    upper = next(e for e in TTFT_EDGES if e >= true_p99)
    lower = max([0.0, *(e for e in TTFT_EDGES if e < true_p99)])
    assert lower <= pool.ttft_p99.value <= upper


def test_histogram_quantile_edge_cases() -> None:
    assert math.isnan(histogram_quantile(0.99, ITL_EDGES, [0.0] * (len(ITL_EDGES) + 1)))
    above = Histogram(ITL_EDGES)
    above.observe(500.0, 10)
    assert histogram_quantile(0.99, ITL_EDGES, above.counts) == ITL_EDGES[-1]
    one_bucket = Histogram(ITL_EDGES)
    one_bucket.observe(0.06, 100)  # all in (0.05, 0.075]
    assert histogram_quantile(0.5, ITL_EDGES, one_bucket.counts) == pytest.approx(0.0625)


def test_linear_observations_equal_individual_ones() -> None:
    linear, single = Histogram(ITL_EDGES), Histogram(ITL_EDGES)
    linear.observe_linear(0.009, 0.0011, 40, 3)
    for i in range(40):
        single.observe(0.009 + i * 0.0011, 3)
    assert linear.counts == single.counts
    assert linear.sum == pytest.approx(single.sum) and linear.count == single.count


def test_rates_gauges_and_missing_signals() -> None:
    stats, view = ReplicaStats(), PromView(window=60)
    view.scrape(scrape(0.0, stats))
    first = view.snapshot(0.0).for_pool(*KEY)
    assert first.request_rate.missing and first.waiting.value == 0.0
    for at in (5.0, 10.0, 65.0):
        stats.requests_finished += 50
        stats.generation_tokens += 5000
        view.scrape(scrape(at, stats, running=7, waiting=3))
    pool = view.snapshot(66.0).for_pool(*KEY)
    # window (6, 66]: scrapes at 10 and 65 -> 50 requests in 55 s
    assert pool.request_rate.value == pytest.approx(50 / 55)
    assert pool.output_tokens_per_second.value == pytest.approx(5000 / 55)
    assert (pool.running.value, pool.waiting.value, pool.ready_replicas.value) == (7, 3, 2)
    assert pool.ttft_p99.missing  # no TTFT observed in the window
    stale = view.snapshot(200.0).for_pool(*KEY)
    assert stale.request_rate.missing and stale.waiting.missing


def test_the_replicas_a_scrape_read_are_a_signal_as_in_prometheus() -> None:
    view = PromView(window=60)
    view.scrape({KEY: PoolScrape(0.0, Counters(), 3.0, 0.0, 0.5, ready=2, scraped=3)})
    pool = view.snapshot(0.0).for_pool(*KEY)
    assert (pool.ready_replicas.value, pool.scraped_replicas.value) == (2, 3)
