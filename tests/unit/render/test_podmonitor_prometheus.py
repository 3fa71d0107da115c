"""The rendered PodMonitor's relabelings, run by a real Prometheus 2.42, give engine series the labels
the signals layer queries and restore 'vllm:' names that prometheus_client escaped to 'vllm_'.

Prometheus-operator turns each relabeling into a relabel_config; here the same rules run on a
static target that carries the Kubernetes service-discovery labels a pod would have.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.render.workloads import render_pool
from inferencefleet.signals.testing import free_port, prometheus

pytestmark = pytest.mark.prometheus


def snake(rule: dict[str, Any]) -> dict[str, Any]:
    """A PodMonitor RelabelConfig as a Prometheus relabel_config."""
    return {re.sub(r"([A-Z])", r"_\1", key).lower(): value for key, value in rule.items()}


def query(url: str, promql: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v1/query?query={urllib.parse.quote(promql)}", timeout=5) as response:
        return json.load(response)["data"]["result"]  # type: ignore[no-any-return]


def test_relabelings_in_a_real_prometheus(
    make_pool: Callable[..., InferencePool], tmp_path: Path, prometheus_binaries: None
) -> None:
    pool = make_pool(metadata={"name": "llama", "namespace": "serving"}, spec={"tier": "premium"})
    monitor = next(o for o in render_pool(pool, replicas=1) if o["kind"] == "PodMonitor")
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]

    registry = CollectorRegistry()
    Gauge("vllm:num_requests_waiting", "queued", ["model_name"], registry=registry).labels("m").set(7)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    discovered = {  # what Kubernetes service discovery attaches to the pod's target
        "__meta_kubernetes_namespace": "serving",
        "__meta_kubernetes_pod_name": "llama-7d9f-abcde",
        "__meta_kubernetes_pod_label_inferencefleet_io_pool": "llama",
        "__meta_kubernetes_pod_label_inferencefleet_io_tier": "premium",
    }
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{
            "job_name": "podmonitor",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": discovered}],
            "relabel_configs": [snake(r) for r in endpoint["relabelings"]],
            "metric_relabel_configs": [snake(r) for r in endpoint["metricRelabelings"]],
        }],
    }
    try:
        with prometheus(tmp_path / "data", yaml.safe_dump(config)) as url:
            deadline, result = time.monotonic() + 60, []
            while not result and time.monotonic() < deadline:
                result = query(url, 'vllm:num_requests_waiting{inferencefleet_io_pool="llama"}')
                time.sleep(0.5)
            escaped = query(url, "vllm_num_requests_waiting")
    finally:
        server.shutdown()
        thread.join()
    assert result, "no relabelled series within 60 s of Prometheus start"
    [series] = result
    assert {k: series["metric"][k] for k in ("namespace", "inferencefleet_io_pool", "inferencefleet_io_tier", "pod")} == {
        "namespace": "serving", "inferencefleet_io_pool": "llama", "inferencefleet_io_tier": "premium",
        "pod": "llama-7d9f-abcde"}
    assert series["value"][1] == "7"
    assert escaped == []  # every escaped name was rewritten back to vllm:
