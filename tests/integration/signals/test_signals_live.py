"""A live prometheus_client exporter with vLLM metric names, scraped every second by a real Prometheus.

prometheus_client >= 0.23 escapes ``vllm:`` to ``vllm_`` when Prometheus negotiates OpenMetrics, and
no relabel rule is configured here: the operator's queries must read the escaped names as they are.
Every observation falls in one bucket, so the quantiles are exact interpolations; rates depend on
timing, so they are checked through their fixed ratios (100 prompt and 10 output tokens per request).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from inferencefleet.signals.model import SIGNAL_NAMES, SignalsSnapshot
from inferencefleet.signals.prometheus import PrometheusSource
from inferencefleet.signals.testing import free_port, prometheus

TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
ITL = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0)
E2E = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0)


class Engine:
    """A fake vLLM's metrics, with a thread finishing a request every 50 ms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        label = ["model_name"]
        gauge = lambda name: Gauge(name, name, label, registry=self.registry).labels("llama")  # noqa: E731
        gauge("vllm:num_requests_running").set(3)
        gauge("vllm:num_requests_waiting").set(2)
        gauge("vllm:kv_cache_usage_perc").set(0.4)
        self.success = Counter("vllm:request_success", "finished", [*label, "finished_reason"],
                               registry=self.registry).labels("llama", "stop")
        self.prompt = Counter("vllm:prompt_tokens", "prefill", label, registry=self.registry).labels("llama")
        self.output = Counter("vllm:generation_tokens", "decode", label, registry=self.registry).labels("llama")
        histogram = lambda name, edges: Histogram(name, name, label, buckets=edges,  # noqa: E731
                                                  registry=self.registry).labels("llama")
        self.ttft = histogram("vllm:time_to_first_token_seconds", TTFT)
        self.itl = histogram("vllm:inter_token_latency_seconds", ITL)
        self.e2e = histogram("vllm:e2e_request_latency_seconds", E2E)
        self.stop = threading.Event()

    def serve(self) -> None:
        while not self.stop.wait(0.05):
            self.prompt.inc(100)
            self.output.inc(10)
            self.ttft.observe(0.2)
            self.itl.observe(0.03)
            self.e2e.observe(1.2)
            self.success.inc()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    engine = Engine()
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=engine.registry)
    worker = threading.Thread(target=engine.serve, daemon=True)
    worker.start()
    config = f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
- job_name: vllm
  static_configs:
  - targets: ['127.0.0.1:{port}']
    labels: {{namespace: live, inferencefleet_io_pool: chat, pod: chat-0}}
"""
    try:
        with prometheus(tmp_path_factory.mktemp("live") / "data", config) as url:
            yield url
    finally:
        engine.stop.set()
        worker.join()
        server.shutdown()


async def poll(source: PrometheusSource, within: float = 40.0) -> SignalsSnapshot:
    """The first snapshot where the pool has every signal (Prometheus scrapes first after ~5 s)."""
    deadline = time.monotonic() + within
    while True:
        snapshot = await source.snapshot([("live", "chat")])
        missing = snapshot.pools[0].missing()
        if not missing or time.monotonic() > deadline:
            return snapshot
        await asyncio.sleep(0.5)


async def test_live_vllm_exporter_with_escaped_names(live: str) -> None:
    chat = (await poll(PrometheusSource(live, window=5))).pools[0]
    assert chat.missing() == {}
    assert {n: chat.sample(n).value for n in SIGNAL_NAMES if n not in {
        "request_rate", "prompt_tokens_per_second", "output_tokens_per_second"}} == pytest.approx({
        "running": 3, "waiting": 2, "kv_cache_usage": 0.4,
        "ttft_p50": 0.1 + 0.15 * 0.5, "ttft_p99": 0.1 + 0.15 * 0.99,       # 0.2 is in (0.1, 0.25]
        "itl_p50": 0.025 + 0.025 * 0.5, "itl_p99": 0.025 + 0.025 * 0.99,   # 0.03 is in (0.025, 0.05]
        "e2e_p99": 1.0 + 0.5 * 0.99,                                       # 1.2 is in (1.0, 1.5]
        "ready_replicas": 1, "scraped_replicas": 1,
    })
    rate = chat.request_rate.value
    assert rate is not None and rate > 0
    assert chat.prompt_tokens_per_second.value == pytest.approx(100 * rate, rel=0.05)
    assert chat.output_tokens_per_second.value == pytest.approx(10 * rate, rel=0.05)

    stored = httpx.get(f"{live}/api/v1/label/__name__/values").json()["data"]
    assert "vllm_num_requests_running" in stored and "vllm:num_requests_running" not in stored, (
        "the exporter no longer escapes names: this test no longer covers the escaped spelling"
    )
