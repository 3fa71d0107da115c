"""Every signal read from a real Prometheus loaded with known history, checked against hand-computed values.

History: 10 minutes, one sample every 10 s, ending at END. Four pools: serving/llama-8b (vLLM, new
names, two pods; pod 0 also exports the deprecated gpu_cache_usage_perc with a different value),
serving/mixtral (trtllm-serve, one ready pod and one down target), batch/llama-old (vLLM old
names, idle for the last 2 minutes) and serving/triton-llm (Triton); DCGM GPU gauges for the pods of
llama-8b and mixtral, and a pool in a namespace spelled with a quote, a backslash, braces and a
newline (escaping). Counters grow linearly and the
1 m window holds exactly 7 samples 60 s apart, so rate() = increment per 10 s / 10 without
extrapolation. Histogram observations fall in one or two buckets, so histogram_quantile is a
linear interpolation inside a known bucket: lower + (upper - lower) x (rank within bucket).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferencefleet.signals.prometheus import PrometheusSource
from inferencefleet.signals.testing import Point, backfill, prometheus

STEP = 10
SPAN = 600
TTFT_EDGES = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
              20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_EDGES = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
             40.0, 80.0)
E2E_EDGES = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
             480.0, 960.0, 1920.0, 7680.0)
TRITON_MS_EDGES = (10.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
ODD = 'we"ird\\ns{a="b"}\nx'
"""A namespace no PromQL string may be spliced with."""


def labels(namespace: str, pool: str, pod: str, **extra: str) -> dict[str, str]:
    return {"namespace": namespace, "inferencefleet_io_pool": pool, "pod": pod, **extra}


def counter(name: str, lbl: dict[str, str], per_step: float, times: list[int], until: int) -> list[Point]:
    """A counter starting at 1000 that grows by ``per_step`` every step up to ``until``, then stays flat."""
    return [(name, lbl, t, 1000 + per_step * (min(t, until) - times[0]) / STEP) for t in times]


def gauge(name: str, lbl: dict[str, str], value: float, times: list[int]) -> list[Point]:
    return [(name, lbl, t, value) for t in times]


def histogram(name: str, lbl: dict[str, str], edges: tuple[float, ...], per_step: dict[float, int],
              times: list[int], until: int) -> list[Point]:
    """Cumulative ``_bucket`` series: ``per_step`` maps a bucket's upper edge to observations per step."""
    points: list[Point] = []
    for edge in (*edges, float("inf")):
        below = sum(n for upper, n in per_step.items() if upper <= edge)
        le = "+Inf" if edge == float("inf") else repr(edge)
        points += counter(f"{name}_bucket", {**lbl, "le": le}, below, times, until)
    return points


def history(end: int) -> list[Point]:
    times = list(range(end - SPAN, end + 1, STEP))
    idle_from = end - 120
    points: list[Point] = []
    for pod, (stop, length, prompt, gen, running, waiting, kv) in {
        "llama-8b-0": (5, 1, 5000, 1200, 12, 3, 0.5),
        "llama-8b-1": (4, 0, 3000, 800, 8, 1, 0.7),
    }.items():
        lbl = labels("serving", "llama-8b", pod, model_name="llama")
        points += counter("vllm:request_success_total", {**lbl, "finished_reason": "stop"}, stop, times, end)
        points += counter("vllm:request_success_total", {**lbl, "finished_reason": "length"}, length, times, end)
        points += counter("vllm:prompt_tokens_total", lbl, prompt, times, end)
        points += counter("vllm:generation_tokens_total", lbl, gen, times, end)
        points += gauge("vllm:num_requests_running", lbl, running, times)
        points += gauge("vllm:num_requests_waiting", lbl, waiting, times)
        points += gauge("vllm:kv_cache_usage_perc", lbl, kv, times)
        points += histogram("vllm:time_to_first_token_seconds", lbl, TTFT_EDGES, {0.25: 9, 0.5: 1}, times, end)
        points += histogram("vllm:inter_token_latency_seconds", lbl, ITL_EDGES, {0.05: 20}, times, end)
        points += histogram("vllm:e2e_request_latency_seconds", lbl, E2E_EDGES, {5.0: 5}, times, end)
        points += gauge("up", lbl, 1, times)
    # vLLM 0.9/0.10 export the deprecated name too; it must not be counted a second time.
    points += gauge("vllm:gpu_cache_usage_perc", labels("serving", "llama-8b", "llama-8b-0", model_name="llama"),
                    0.9, times)

    lbl = labels("serving", "mixtral", "mixtral-0", model_name="mixtral", engine_type="trtllm")
    points += counter("trtllm_request_success_total", {**lbl, "finished_reason": "stop"}, 3, times, end)
    points += counter("trtllm_prompt_tokens_total", lbl, 2000, times, end)
    points += counter("trtllm_generation_tokens_total", lbl, 500, times, end)
    points += gauge("trtllm_num_requests_running", lbl, 7, times)
    points += gauge("trtllm_num_requests_waiting", lbl, 0, times)
    points += gauge("trtllm_kv_cache_utilization", lbl, 0.25, times)
    points += histogram("trtllm_time_to_first_token_seconds", lbl, TTFT_EDGES, {0.75: 3}, times, end)
    points += histogram("trtllm_time_per_output_token_seconds", lbl, ITL_EDGES, {0.075: 30}, times, end)
    points += histogram("trtllm_e2e_request_latency_seconds", lbl, E2E_EDGES, {10.0: 3}, times, end)
    points += gauge("up", lbl, 1, times)
    points += gauge("up", labels("serving", "mixtral", "mixtral-1"), 0, times)

    lbl = labels("batch", "llama-old", "llama-old-0", model_name="llama")
    points += counter("vllm:request_success_total", {**lbl, "finished_reason": "stop"}, 2, times, idle_from)
    points += counter("vllm:prompt_tokens_total", lbl, 100, times, idle_from)
    points += counter("vllm:generation_tokens_total", lbl, 300, times, idle_from)
    points += gauge("vllm:num_requests_running", lbl, 2, times)
    points += gauge("vllm:num_requests_waiting", lbl, 0, times)
    points += gauge("vllm:gpu_cache_usage_perc", lbl, 0.1, times)
    points += histogram("vllm:time_to_first_token_seconds", lbl, TTFT_EDGES, {0.06: 2}, times, idle_from)
    points += histogram("vllm:time_per_output_token_seconds", lbl, ITL_EDGES, {0.025: 50}, times, idle_from)
    points += histogram("vllm:e2e_request_latency_seconds", lbl, E2E_EDGES, {1.0: 2}, times, idle_from)
    points += gauge("up", lbl, 1, times)

    lbl = labels("serving", "triton-llm", "triton-llm-0", model="tensorrt_llm", version="1")
    points += counter("nv_inference_request_success", lbl, 10, times, end)
    points += gauge("nv_trt_llm_request_metrics", {**lbl, "request_type": "active"}, 5, times)
    points += gauge("nv_trt_llm_request_metrics", {**lbl, "request_type": "waiting"}, 2, times)
    points += gauge("nv_trt_llm_request_metrics", {**lbl, "request_type": "max"}, 256, times)
    points += gauge("nv_trt_llm_kv_cache_block_metrics", {**lbl, "kv_cache_block_type": "fraction"}, 0.3, times)
    points += gauge("nv_trt_llm_kv_cache_block_metrics", {**lbl, "kv_cache_block_type": "used"}, 900, times)
    points += histogram("nv_inference_first_response_histogram_ms", lbl, TRITON_MS_EDGES, {200.0: 10}, times, end)
    points += gauge("up", lbl, 1, times)

    # DCGM (dcgm-exporter's pod mapper): no pool label, joined to pools through the targets' pods.
    for pod, gpu, watts, util in (("llama-8b-0", "0", 300, 80), ("llama-8b-1", "1", 250, 60),
                                  ("mixtral-0", "2", 400, 90), ("mixtral-0", "3", 420, 70),
                                  ("training-0", "4", 700, 100), ("", "5", 60, 0)):
        lbl = {"namespace": "serving", "pod": pod, "gpu": gpu, "modelName": "NVIDIA H100 80GB HBM3"}
        points += gauge("DCGM_FI_DEV_POWER_USAGE", lbl, watts, times)
        points += gauge("DCGM_FI_DEV_GPU_UTIL", lbl, util, times)

    lbl = labels(ODD, "odd", "odd-0", model_name="llama")
    points += gauge("vllm:num_requests_running", lbl, 1, times)
    points += gauge("up", lbl, 1, times)

    # Series of something that is not a pool: never reported.
    points += gauge("vllm:num_requests_running", {"namespace": "serving", "pod": "stray"}, 99, times)
    points += gauge("up", {"namespace": "serving", "pod": "stray"}, 1, times)
    return points


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """(URL, END) of a Prometheus serving the history above."""
    end = int(time.time()) // STEP * STEP - 60
    data = tmp_path_factory.mktemp("prom") / "data"
    backfill(history(end), data)
    with prometheus(Path(data)) as url:
        yield url, end


def values(snapshot_pool: object) -> dict[str, float | None]:
    from inferencefleet.signals.model import SIGNAL_NAMES, PoolSignals

    assert isinstance(snapshot_pool, PoolSignals)
    return {n: snapshot_pool.sample(n).value for n in SIGNAL_NAMES}


async def test_every_signal_of_every_engine_matches_hand_computed_values(backfilled: tuple[str, int]) -> None:
    url, end = backfilled
    at = end - 120  # every pool busy over the whole window
    snapshot = await PrometheusSource(url).snapshot(now=at)

    assert [p.key for p in snapshot.pools] == [
        ("batch", "llama-old"), ("serving", "llama-8b"), ("serving", "mixtral"), ("serving", "triton-llm"),
        (ODD, "odd"),
    ]
    assert values(snapshot.for_pool("serving", "llama-8b")) == pytest.approx({
        "request_rate": (5 + 1 + 4 + 0) / 10,          # 1.0 requests/s over both pods and reasons
        "prompt_tokens_per_second": (5000 + 3000) / 10,
        "output_tokens_per_second": (1200 + 800) / 10,
        "running": 12 + 8,
        "waiting": 3 + 1,
        "kv_cache_usage": (0.5 + 0.7) / 2,              # the deprecated 0.9 series is not averaged in
        "ttft_p50": 0.1 + 0.15 * (0.5 / 0.9),          # 90 % in (0.1, 0.25], 10 % in (0.25, 0.5]
        "ttft_p99": 0.25 + 0.25 * (0.99 - 0.9) / 0.1,  # 0.475
        "itl_p50": 0.025 + 0.025 * 0.5,                # all in (0.025, 0.05]
        "itl_p99": 0.025 + 0.025 * 0.99,
        "e2e_p99": 2.5 + 2.5 * 0.99,                   # all in (2.5, 5]
        "ready_replicas": 2,
        "scraped_replicas": 2,
    })
    assert values(snapshot.for_pool("serving", "mixtral")) == pytest.approx({
        "request_rate": 0.3,
        "prompt_tokens_per_second": 200,
        "output_tokens_per_second": 50,
        "running": 7,
        "waiting": 0,                                   # a real zero stays zero
        "kv_cache_usage": 0.25,
        "ttft_p50": 0.5 + 0.25 * 0.5,                  # all in (0.5, 0.75]
        "ttft_p99": 0.5 + 0.25 * 0.99,
        "itl_p50": 0.05 + 0.025 * 0.5,                 # all in (0.05, 0.075]
        "itl_p99": 0.05 + 0.025 * 0.99,
        "e2e_p99": 5 + 5 * 0.99,                       # all in (5, 10]
        "ready_replicas": 1,                            # mixtral-1 is down
        "scraped_replicas": 1,                          # and exports no gauges
    })
    assert values(snapshot.for_pool("batch", "llama-old")) == pytest.approx({
        "request_rate": 0.2,
        "prompt_tokens_per_second": 10,
        "output_tokens_per_second": 30,
        "running": 2,
        "waiting": 0,
        "kv_cache_usage": 0.1,                          # old name gpu_cache_usage_perc
        "ttft_p50": 0.04 + 0.02 * 0.5,                 # all in (0.04, 0.06]
        "ttft_p99": 0.04 + 0.02 * 0.99,
        "itl_p50": 0.01 + 0.015 * 0.5,                 # old name time_per_output_token_seconds, (0.01, 0.025]
        "itl_p99": 0.01 + 0.015 * 0.99,
        "e2e_p99": 0.8 + 0.2 * 0.99,                   # all in (0.8, 1.0]
        "ready_replicas": 1,
        "scraped_replicas": 1,
    })
    triton = snapshot.for_pool("serving", "triton-llm")
    assert values(triton) == pytest.approx({
        "request_rate": 1.0,
        "prompt_tokens_per_second": None,
        "output_tokens_per_second": None,
        "running": 5,
        "waiting": 2,
        "kv_cache_usage": 0.3,
        "ttft_p50": (100 + 100 * 0.5) / 1000,          # milliseconds histogram, all in (100, 200] ms
        "ttft_p99": (100 + 100 * 0.99) / 1000,
        "itl_p50": None,
        "itl_p99": None,
        "e2e_p99": None,
        "ready_replicas": 1,
        "scraped_replicas": 1,                          # request_type="active" only, once per pod
    })
    assert set(triton.missing()) == {"prompt_tokens_per_second", "output_tokens_per_second", "itl_p50",
                                     "itl_p99", "e2e_p99"}
    assert all(why.startswith("Triton exports") for why in triton.missing().values())
    assert snapshot.for_pool("serving", "llama-8b").running.at == at  # stamped with the last scrape

    llama, mixtral = snapshot.for_pool("serving", "llama-8b"), snapshot.for_pool("serving", "mixtral")
    assert llama.gpu_power_watts.value == pytest.approx(300 + 250)      # training-0 and the idle GPU not counted
    assert llama.gpu_utilization.value == pytest.approx((0.8 + 0.6) / 2)
    assert mixtral.gpu_power_watts.value == pytest.approx(400 + 420)    # both GPUs of the TP2 pod
    assert mixtral.gpu_utilization.value == pytest.approx((0.9 + 0.7) / 2)
    assert (triton.gpu_power_watts.missing or "").startswith("no DCGM series for this pool's pods")
    assert "gpu_power_watts" not in triton.missing(), "accounting signals are optional"


async def test_idle_pool_has_zero_rates_and_missing_latencies_not_zero(backfilled: tuple[str, int]) -> None:
    url, end = backfilled
    idle = (await PrometheusSource(url).snapshot(now=end)).for_pool("batch", "llama-old")
    assert idle.request_rate.value == 0
    assert idle.output_tokens_per_second.value == 0
    for name in ("ttft_p50", "ttft_p99", "itl_p50", "itl_p99", "e2e_p99"):
        assert idle.sample(name).value is None
        assert "NaN" in (idle.sample(name).missing or "")


async def test_values_older_than_the_staleness_bound_are_missing(backfilled: tuple[str, int]) -> None:
    url, end = backfilled
    snapshot = await PrometheusSource(url, stale_after=60).snapshot(now=end + 150)
    assert snapshot.pools, "gauges are still within Prometheus's 5 m lookback, so pools are seen"
    for pool in snapshot.pools:
        assert all("stale: last scrape 150s ago" in why for why in pool.missing().values())
        assert len(pool.missing()) == 13


async def test_namespace_filter_and_hostile_namespace(backfilled: tuple[str, int]) -> None:
    url, end = backfilled
    batch = await PrometheusSource(url, namespace="batch").snapshot(now=end - 120)
    assert [p.key for p in batch.pools] == [("batch", "llama-old")]
    hostile = PrometheusSource(url, namespace='batch"} or vllm:num_requests_running{namespace=~".*')
    results = await hostile.query_all(end - 120)
    assert all(result == [] for result in results.values()), "escaped: a valid query matching nothing"
    odd = await PrometheusSource(url, namespace=ODD).snapshot(now=end - 120)
    assert [p.key for p in odd.pools] == [(ODD, "odd")]
    assert (odd.pools[0].running.value, odd.pools[0].ready_replicas.value) == (1, 1)


async def test_requested_pools_without_series_are_missing_and_failures_do_not_crash(
    backfilled: tuple[str, int],
) -> None:
    url, end = backfilled
    snapshot = await PrometheusSource(url).snapshot([("serving", "ghost"), ("serving", "mixtral")], now=end - 120)
    assert [p.key for p in snapshot.pools] == [("serving", "ghost"), ("serving", "mixtral")]
    assert set(snapshot.pools[0].missing()) == set(values(snapshot.pools[0]))
    assert snapshot.pools[1].running.value == 7

    down = await PrometheusSource("http://127.0.0.1:9", retries=1, timeout=1).snapshot(
        [("serving", "mixtral")], now=end
    )
    assert all(why.startswith("query failed: ConnectError") for why in down.pools[0].missing().values())


async def test_window_is_configurable(backfilled: tuple[str, int]) -> None:
    url, end = backfilled
    # Over 3 m ending at END the old pool was busy for the first minute only: 6 steps x 2 = 12 requests.
    snapshot = await PrometheusSource(url, window=180).snapshot(now=end)
    assert snapshot.for_pool("batch", "llama-old").request_rate.value == pytest.approx(12 / 180)


def run_command(*argv: str) -> int:
    """``inferencefleet signals ARGV`` through its own registration (as cli.py wires it)."""
    import argparse

    from inferencefleet.commands import signals as command

    parser = argparse.ArgumentParser(prog="inferencefleet")
    command.register(parser.add_subparsers())
    args = parser.parse_args(["signals", *argv])
    return int(args.func(args))


def test_command_json_is_a_snapshot_and_table_shows_reasons(
    backfilled: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    from inferencefleet.signals.model import SignalsSnapshot

    url, _ = backfilled
    assert run_command("--prometheus", url, "-o", "json", "--stale-after", "10m") == 0
    snapshot = SignalsSnapshot.model_validate_json(capsys.readouterr().out)
    assert [p.key for p in snapshot.pools] == [
        ("batch", "llama-old"), ("serving", "llama-8b"), ("serving", "mixtral"), ("serving", "triton-llm"),
        (ODD, "odd"),
    ]
    assert snapshot.for_pool("serving", "mixtral").running.value == 7

    assert run_command("--prometheus", url, "-n", "serving", "--stale-after", "10m") == 0
    table = capsys.readouterr().out
    assert "llama-8b" in table and "llama-old" not in table
    assert "Triton exports no token counters" in table


def test_command_errors_are_one_line_user_errors() -> None:
    from inferencefleet.errors import UserError

    with pytest.raises(UserError, match=re.escape("--prometheus http://127.0.0.1:9: every query failed")):
        run_command("--prometheus", "http://127.0.0.1:9", "--timeout", "1s")
    with pytest.raises(UserError, match="must start with http"):
        run_command("--prometheus", "127.0.0.1:9090")
