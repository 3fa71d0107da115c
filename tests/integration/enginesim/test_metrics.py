"""/metrics: vLLM's names, types, labels and bucket edges; counters and gauges follow the load."""

from __future__ import annotations

import asyncio
import math

from prometheus_client.parser import text_string_to_metric_families

from inferencefleet.planner.capacity import named_profile

from .conftest import MODEL, metric_samples, value

# shared/reference/metrics-calibration-baselines.md section 2.1 (vLLM loggers.py)
TTFT = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10, 20, 40, 80,
        160, 640, 2560]
ITL = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10, 20, 40, 80]
REQUEST = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680]
ITERATION = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]

EXPECTED = {
    "vllm:num_requests_running": ("gauge", None),
    "vllm:num_requests_waiting": ("gauge", None),
    "vllm:kv_cache_usage_perc": ("gauge", None),
    "vllm:prompt_tokens": ("counter", None),
    "vllm:generation_tokens": ("counter", None),
    "vllm:request_success": ("counter", None),
    "vllm:num_preemptions": ("counter", None),
    "vllm:time_to_first_token_seconds": ("histogram", TTFT),
    "vllm:inter_token_latency_seconds": ("histogram", ITL),
    "vllm:e2e_request_latency_seconds": ("histogram", REQUEST),
    "vllm:request_queue_time_seconds": ("histogram", REQUEST),
    "vllm:iteration_tokens_total": ("histogram", ITERATION),
    "engine_sim_lag_seconds": ("counter", None),  # ours: time lost when the host cannot keep up
}


async def test_names_types_labels_and_bucket_edges(start_engine):
    client = await start_engine()
    await client.post("/v1/completions", json={"prompt": "hello", "max_tokens": 3})
    response = await client.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    for name, (kind, edges) in EXPECTED.items():
        family = families[name]
        assert family.type == kind, name
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            assert sample.labels["model_name"] == MODEL and sample.labels["engine"] == "0", sample
        if kind == "counter":
            assert all(s.name in (f"{name}_total", f"{name}_created") for s in family.samples), name
        if edges is not None:
            les = [s.labels["le"] for s in family.samples if s.name == f"{name}_bucket"]
            assert [float(le) for le in les] == [*map(float, edges), math.inf], name
    reasons = {s.labels["finished_reason"] for s in families["vllm:request_success"].samples}
    assert reasons == {"stop", "length", "abort"}


async def test_openmetrics_scrape_escapes_colons_like_vllm(start_engine):
    """Prometheus 2.42 asks for OpenMetrics; recent prometheus_client then writes vllm_ on sample lines."""
    client = await start_engine()
    response = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    text = await response.text()
    assert "vllm_num_requests_waiting{" in text
    assert text.rstrip().endswith("# EOF")


async def test_counters_and_histograms_move_with_load(start_engine):
    client = await start_engine()
    before = await metric_samples(client)
    sizes = [(120, 9), (40, 1), (700, 30), (5, 12)]
    await asyncio.gather(*(
        client.post("/v1/completions", json={"prompt": list(range(p)), "max_tokens": n}) for p, n in sizes
    ))
    await client.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50, "sim": {"prompt_tokens": 64, "output_tokens": 6}})
    after = await metric_samples(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    prompts = sum(p for p, _ in sizes) + 64
    outputs = sum(n for _, n in sizes) + 6
    assert delta("vllm:prompt_tokens_total") == prompts
    assert delta("vllm:generation_tokens_total") == outputs
    assert delta("vllm:request_success_total", finished_reason="length") == 4
    assert delta("vllm:request_success_total", finished_reason="stop") == 1
    assert delta("vllm:time_to_first_token_seconds_count") == 5
    assert delta("vllm:inter_token_latency_seconds_count") == outputs - 5
    assert delta("vllm:e2e_request_latency_seconds_count") == 5
    assert delta("vllm:request_queue_time_seconds_count") == 5
    assert delta("vllm:iteration_tokens_total_sum") == prompts + outputs
    assert delta("vllm:e2e_request_latency_seconds_sum") > delta("vllm:time_to_first_token_seconds_sum") > 0
    assert value(after, "vllm:num_requests_running") == 0
    assert value(after, "vllm:num_requests_waiting") == 0
    assert value(after, "vllm:kv_cache_usage_perc") == 0


async def test_concurrency_above_max_num_seqs_queues(start_engine):
    client = await start_engine(time_scale=5, max_num_seqs=2)
    requests = [asyncio.create_task(client.post("/v1/completions", json={"prompt": "hi", "max_tokens": 40}))
                for _ in range(6)]
    seen_waiting, seen_running, seen_kv = 0.0, 0.0, 0.0
    while not all(r.done() for r in requests):
        samples = await metric_samples(client)
        seen_waiting = max(seen_waiting, value(samples, "vllm:num_requests_waiting"))
        seen_running = max(seen_running, value(samples, "vllm:num_requests_running"))
        seen_kv = max(seen_kv, value(samples, "vllm:kv_cache_usage_perc"))
        await asyncio.sleep(0.01)
    assert [r.result().status for r in requests] == [200] * 6
    assert seen_running == 2
    assert seen_waiting >= 3
    assert 0 < seen_kv < 1
    samples = await metric_samples(client)
    # pairs run 40 steps each: the second pair queued >= 40 steps, the third >= 80 (model seconds)
    shortest_step = named_profile("llama3-8b-h100-tp1").step_time(1, 0)
    assert value(samples, "vllm:request_queue_time_seconds_sum") >= 0.95 * (2 * 40 + 2 * 80) * shortest_step
    assert value(samples, "vllm:request_queue_time_seconds_count") == 6


async def test_a_batch_in_flight_holds_kv_cache_also_in_its_last_step(start_engine):
    """Two requests of the same length finish in the same step; while it runs (gauges are set when a step is
    scheduled) the batch still holds its KV cache: running 2 with usage 0 would read as an empty engine."""
    client = await start_engine(time_scale=0.2, max_num_seqs=2)
    requests = [asyncio.create_task(client.post("/v1/completions", json={"prompt": "hi", "max_tokens": 12}))
                for _ in range(2)]
    seen = []
    while not all(r.done() for r in requests):
        samples = await metric_samples(client)
        seen.append((value(samples, "vllm:num_requests_running"), value(samples, "vllm:kv_cache_usage_perc")))
        await asyncio.sleep(0.005)
    assert [r.result().status for r in requests] == [200] * 2
    assert any(running == 2 for running, _ in seen)
    assert all(kv > 0 for running, kv in seen if running > 0)


async def test_client_disconnect_counts_as_abort(start_engine):
    client = await start_engine(time_scale=1)
    response = await client.post("/v1/completions", json={"prompt": "hi", "max_tokens": 500, "stream": True})
    await response.content.readline()  # first chunk arrived
    response.close()
    for _ in range(200):
        samples = await metric_samples(client)
        if value(samples, "vllm:request_success_total", finished_reason="abort") == 1:
            break
        await asyncio.sleep(0.02)
    assert value(samples, "vllm:request_success_total", finished_reason="abort") == 1
    assert value(samples, "vllm:request_success_total", finished_reason="length") == 0


async def test_client_disconnect_frees_the_batch_slot_for_a_queued_request(start_engine):
    client = await start_engine(time_scale=1, max_num_seqs=1)
    first = await client.post("/v1/completions", json={"prompt": "hi", "max_tokens": 2000, "stream": True})
    await first.content.readline()  # the first request holds the only slot
    queued = asyncio.create_task(client.post("/v1/completions", json={"prompt": "hi", "max_tokens": 2}))
    for _ in range(200):
        if value(await metric_samples(client), "vllm:num_requests_waiting") == 1:
            break
        await asyncio.sleep(0.01)
    assert value(await metric_samples(client), "vllm:num_requests_waiting") == 1
    first.close()
    # 2000 tokens take ~14 s on the 8B profile; the queued request must not wait for them.
    response = await asyncio.wait_for(queued, timeout=5)
    assert response.status == 200
    assert (await response.json())["usage"]["completion_tokens"] == 2
