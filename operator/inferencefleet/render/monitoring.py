"""The PodMonitor that puts engine metrics into Prometheus with the labels the signals layer queries."""

from __future__ import annotations

from typing import Any

from ..api.v1alpha1 import InferencePool
from . import labels
from .engine import Engine
from .pod import PORT_NAME

SERIES_LABELS: dict[str, str] = {
    "namespace": "__meta_kubernetes_namespace",
    "inferencefleet_io_pool": "__meta_kubernetes_pod_label_inferencefleet_io_pool",
    "inferencefleet_io_tier": "__meta_kubernetes_pod_label_inferencefleet_io_tier",
    "pod": "__meta_kubernetes_pod_name",
}
"""Series label -> the Prometheus Kubernetes service-discovery label it is copied from."""

VLLM_NAME_FIX = {
    "sourceLabels": ["__name__"],
    "regex": "vllm_(.+)",
    "targetLabel": "__name__",
    "replacement": "vllm:$1",
    "action": "replace",
}
"""prometheus_client >= 0.23 escapes 'vllm:x' to 'vllm_x' under OpenMetrics; this restores the name."""


def pod_monitor_spec(pool: InferencePool, engine: Engine, interval: str) -> dict[str, Any]:
    """PodMonitor spec scraping the pool's metrics pods."""
    endpoint: dict[str, Any] = {
        "port": PORT_NAME,
        "path": engine.metrics_path,
        "interval": interval,
        "relabelings": [
            {"sourceLabels": [source], "targetLabel": target, "action": "replace"}
            for target, source in SERIES_LABELS.items()
        ],
    }
    if engine.kind == "vllm":
        endpoint["metricRelabelings"] = [VLLM_NAME_FIX]
    return {
        "selector": {"matchLabels": labels.metrics_selector(pool)},
        "podMetricsEndpoints": [endpoint],
    }
