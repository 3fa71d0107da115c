"""The engine simulator as the integration suites use it: a real Prometheus scrapes it, the operator's
signals adapter reads the pool's signals back, and they describe the load the engine is under.

A closed loop keeps 8 requests in flight against max-num-seqs 4, so the engine always runs 4 and
queues about 4; every request asks for 100 prompt and 24 output tokens, so token rates are fixed
multiples of the request rate. Prompt tokens count at prefill and requests at completion, so over a
window the two counts differ by up to the MAX_NUM_SEQS requests in flight plus one at each edge of
rate()'s extrapolation: SKEW requests per window bounds the token rates' error.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from inferencefleet.signals.model import SignalsSnapshot
from inferencefleet.signals.prometheus import PrometheusSource
from inferencefleet.signals.testing import prometheus

PROMPT, OUTPUT, IN_FLIGHT, MAX_NUM_SEQS = 100, 24, 8, 4
WINDOW = 20.0
SKEW = MAX_NUM_SEQS + 2


async def closed_loop(client, stop: asyncio.Event) -> None:
    while not stop.is_set():
        response = await client.post("/v1/completions", json={
            "prompt": "hi", "max_tokens": OUTPUT, "sim": {"prompt_tokens": PROMPT}})
        assert response.status == 200


async def poll(source: PrometheusSource, not_before: float, within: float = 40.0) -> SignalsSnapshot:
    """The first snapshot after ``not_before`` (Unix time: the rate window is all under load) with
    every signal of the pool present (the first scrape takes ~5 s)."""
    deadline = time.monotonic() + within
    while True:
        if time.time() >= not_before:
            snapshot = await source.snapshot([("sim", "chat")])
            if not snapshot.pools[0].missing() or time.monotonic() > deadline:
                return snapshot
        await asyncio.sleep(0.5)


async def test_prometheus_reads_the_load_back_through_the_signals_adapter(start_engine, tmp_path, prometheus_binaries):
    client = await start_engine("llama3-70b-h100-tp4", time_scale=1.0, max_num_seqs=MAX_NUM_SEQS)
    config = f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
- job_name: engine-sim
  static_configs:
  - targets: ['127.0.0.1:{client.server.port}']
    labels: {{namespace: sim, inferencefleet_io_pool: chat, pod: chat-0}}
"""
    stop = asyncio.Event()
    with prometheus(tmp_path / "data", config) as url:  # blocks the loop while it starts: load after
        load = [asyncio.create_task(closed_loop(client, stop)) for _ in range(IN_FLIGHT)]
        try:
            chat = (await poll(PrometheusSource(url, window=WINDOW), not_before=time.time() + WINDOW + 1)).pools[0]
        finally:
            stop.set()
            await asyncio.gather(*load)
    assert chat.missing() == {}
    assert chat.running.value == MAX_NUM_SEQS
    assert 1 <= chat.waiting.value <= IN_FLIGHT - MAX_NUM_SEQS
    assert 0 < chat.kv_cache_usage.value < 0.01  # 8 x 124 tokens of a ~490k-token cache
    assert chat.ready_replicas.value == 1
    rate = chat.request_rate.value
    assert rate > 0
    assert chat.prompt_tokens_per_second.value == pytest.approx(PROMPT * rate, abs=PROMPT * SKEW / WINDOW)
    assert chat.output_tokens_per_second.value == pytest.approx(OUTPUT * rate, abs=OUTPUT * SKEW / WINDOW)
    # 70B TP4 decode steps are ~22 ms (+ prefill chunks): ITL sits in the (0.01, 0.05] buckets;
    # queueing behind a full batch makes TTFT much longer than one token gap.
    assert 0.01 < chat.itl_p50.value <= 0.05
    assert chat.ttft_p99.value > 5 * chat.itl_p50.value
