"""Queries per tick and tick latency for 10, 100 and 1,000 pools against a real Prometheus.

Each size gets its own Prometheus loaded (promtool backfill) with one vLLM pod per pool: 5 counters
and gauges plus TTFT, ITL and e2e histograms with vLLM's bucket edges, and the pod's GPU in DCGM,
one sample every 10 s. The slowest query is also timed alone (one query at a time).
The grouped design (one query per signal for all pools) is compared, in the same process, with
the naive baseline of one query per signal per pool (run for 10 and 100 pools only).
Prints measured figures; asserts nothing.  Run: .venv/bin/python benchmarks/signals.py
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from inferencefleet.signals.prometheus import PrometheusSource
from inferencefleet.signals.promql import POOL_LABEL, escape
from inferencefleet.signals.testing import Point, backfill, prometheus

SIZES = (10, 100, 1000)
NAIVE_UP_TO = 100
TICKS = 5
EDGES = {
    "vllm:time_to_first_token_seconds": (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                                         2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0),
    "vllm:inter_token_latency_seconds": (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
                                         5.0, 7.5, 10.0, 20.0, 40.0, 80.0),
    "vllm:e2e_request_latency_seconds": (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                                         50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0),
}


def history(pools: int, end: int, span: int = 120) -> list[Point]:
    """``span`` seconds (default two minutes) of one pod per pool up to ``end``, a sample every 10 s."""
    points: list[Point] = []
    times = range(end - span, end + 1, 10)
    for i in range(pools):
        lbl = {"namespace": "bench", "inferencefleet_io_pool": f"pool-{i}", "pod": f"pool-{i}-0", "model_name": "m"}
        for step, t in enumerate(times):
            points += [
                ("vllm:request_success_total", lbl, t, 5.0 * step),
                ("vllm:prompt_tokens_total", lbl, t, 5000.0 * step),
                ("vllm:generation_tokens_total", lbl, t, 1000.0 * step),
                ("vllm:num_requests_running", lbl, t, 8.0),
                ("vllm:num_requests_waiting", lbl, t, 1.0),
                ("vllm:kv_cache_usage_perc", lbl, t, 0.5),
                ("up", lbl, t, 1.0),
                ("DCGM_FI_DEV_POWER_USAGE", {"namespace": "bench", "pod": f"pool-{i}-0", "gpu": "0"}, t, 300.0),
                ("DCGM_FI_DEV_GPU_UTIL", {"namespace": "bench", "pod": f"pool-{i}-0", "gpu": "0"}, t, 80.0),
            ]
            for name, edges in EDGES.items():
                points += [(f"{name}_bucket", {**lbl, "le": repr(e)}, t, 5.0 * step * (e >= edges[len(edges) // 3]))
                           for e in edges]
                points.append((f"{name}_bucket", {**lbl, "le": "+Inf"}, t, 5.0 * step))
    return points


async def grouped_tick(source: PrometheusSource, at: float) -> tuple[int, float, int]:
    """(queries, seconds, pools with every signal) of one tick as the operator runs it."""
    start = time.perf_counter()
    snapshot = await source.snapshot(now=at)
    elapsed = time.perf_counter() - start
    return len(source.queries), elapsed, sum(not p.missing() for p in snapshot.pools)


async def slowest_query(source: PrometheusSource, url: str, at: float) -> tuple[str, float]:
    """(signal, seconds) of the slowest of the tick's queries, each run alone (best of 3)."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        times = {}
        for name, expr in source.queries.items():
            runs = []
            for _ in range(3):
                start = time.perf_counter()
                (await client.post("/api/v1/query", data={"query": expr, "time": at})).raise_for_status()
                runs.append(time.perf_counter() - start)
            times[name] = min(runs)
    name = max(times, key=times.__getitem__)
    return name, times[name]


async def naive_tick(source: PrometheusSource, url: str, pools: int, at: float) -> tuple[int, float]:
    """(queries, seconds) of the baseline: every signal queried once per pool."""
    queries = [q.replace(f'{POOL_LABEL}!=""', f"{POOL_LABEL}={escape(f'pool-{i}')}")
               for i in range(pools) for q in source.queries.values()]
    slots = asyncio.Semaphore(len(source.queries))  # same concurrency as one grouped tick

    async def one(client: httpx.AsyncClient, expr: str) -> int:
        async with slots:
            return (await client.post("/api/v1/query", data={"query": expr, "time": at})).status_code

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        codes = await asyncio.gather(*(one(client, q) for q in queries))
    assert set(codes) == {200}, codes
    return len(queries), time.perf_counter() - start


async def measure(pools: int, url: str, at: float) -> tuple[dict[str, float], str]:
    """Figures of one size, and the name of its slowest query."""
    source = PrometheusSource(url, window=60)
    await grouped_tick(source, at)  # warm up caches once
    runs = [await grouped_tick(source, at) for _ in range(TICKS)]
    slowest, slowest_s = await slowest_query(source, url, at)
    result = {"queries": runs[0][0], "tick_s": statistics.median(r[1] for r in runs), "complete": runs[0][2],
              "slowest_s": slowest_s}
    if pools <= NAIVE_UP_TO:
        naive = [await naive_tick(source, url, pools, at) for _ in range(3)]
        result |= {"naive_queries": naive[0][0], "naive_s": statistics.median(n[1] for n in naive)}
    return result, slowest


def main() -> None:
    end = int(time.time()) // 10 * 10 - 30
    print(f"{'pools':>6} {'series':>8} {'backfill s':>10} {'queries/tick':>12} {'tick ms (median of 5)':>22} "
          f"{'complete pools':>14} {'naive queries':>13} {'naive tick ms':>13} {'naive/grouped':>13}")
    baseline: float | None = None
    for pools in SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            points = history(pools, end)
            backfill(points, Path(tmp) / "data")
            loaded = time.perf_counter() - start
            series = len({(n, tuple(sorted(lbl.items()))) for n, lbl, _, _ in points})
            with prometheus(Path(tmp) / "data") as url:
                r, slowest = asyncio.run(measure(pools, url, end))
        baseline = baseline or r["tick_s"]
        naive = (f"{r['naive_queries']:>13.0f} {r['naive_s'] * 1000:>13.1f} {r['naive_s'] / r['tick_s']:>12.1f}x"
                 if "naive_s" in r else f"{'(skipped)':>13} {'':>13} {'':>13}")
        print(f"{pools:>6} {series:>8} {loaded:>10.1f} {r['queries']:>12.0f} {r['tick_s'] * 1000:>22.1f} "
              f"{r['complete']:>14.0f} {naive}")
        print(f"{'':>6} tick latency vs 10 pools: {r['tick_s'] / baseline:.2f}x for {pools // SIZES[0]}x the pools; "
              f"slowest query alone: {slowest} {r['slowest_s'] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
