"""Fixtures: an in-process engine-sim server on a free loopback port, and helpers to read it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from inferencefleet.enginesim.engine import engine_config
from inferencefleet.enginesim.server import build_app

MODEL = "test/model"
Start = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def start_engine() -> AsyncIterator[Start]:
    """Start engine-sim servers with the given settings; all are stopped at teardown."""
    clients: list[TestClient] = []

    async def start(profile: str = "llama3-8b-h100-tp1", *, time_scale: float = 50.0, max_num_seqs: int = 256,
                    max_num_batched_tokens: int = 8192, max_model_len: int = 8192) -> TestClient:
        config = engine_config(profile=profile, model=MODEL, max_num_seqs=max_num_seqs,
                               max_num_batched_tokens=max_num_batched_tokens, max_model_len=max_model_len,
                               time_scale=time_scale)
        client = TestClient(TestServer(build_app(config), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def metric_samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The scrape as {(sample name, sorted labels): value} (text format, colons kept)."""
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """One sample of the model's engine series (model_name and engine labels added)."""
    key = (name, tuple(sorted({"model_name": MODEL, "engine": "0", **labels}.items())))
    assert key in samples, f"missing sample {key}"
    return samples[key]


def sse_events(body: str) -> list[Any]:
    """Parse an SSE body into its data payloads (JSON objects, or the string '[DONE]')."""
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), f"not an SSE data line: {block!r}"
        payload = block[len("data: "):]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events
