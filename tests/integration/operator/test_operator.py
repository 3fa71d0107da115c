"""The live operator end to end: kopf + kube/ + handlers/ against the emulated API server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from inferencefleet.signals.testing import Point, backfill, prometheus

from .conftest import (
    GROUP,
    VERSION,
    Apiserver,
    condition,
    create,
    deployment,
    example,
    get_pool,
    has_condition,
    play_controller,
    pool,
    running_operator,
    wait_for,
)


def test_pool_is_applied_server_side_with_owner_and_reports_status(
        apiserver: Apiserver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    api = apiserver.api_client()
    with running_operator(monkeypatch, prometheus_url=None):
        create(api, example("quota.yaml"))
        create(api, pool("llama"))
        made = wait_for(lambda: deployment(api, "llama"), "the Deployment")

        pool_body = get_pool(api, "llama")
        owner = made.metadata.owner_references[0]
        assert (owner.kind, owner.name, owner.uid, owner.controller) == (
            "InferencePool", "llama", pool_body["metadata"]["uid"], True)
        applies = [r for r in apiserver.requests()
                   if r.method == "PATCH" and r.url.path == "/apis/apps/v1/namespaces/serving/deployments/llama"]
        assert applies, "the Deployment was not applied with PATCH"
        assert all(r.headers["Content-Type"] == "application/apply-patch+yaml" for r in applies)
        assert all(r.params.get("fieldManager") == "inferencefleet" and r.params.get("force") == "true"
                   for r in applies)
        children = {"deployments", "services", "poddisruptionbudgets", "podmonitors"}

        def applied_kinds() -> set[str]:
            return {r.url.path.split("/")[-2] for r in apiserver.requests()
                    if r.method == "PATCH" and r.params.get("fieldManager") == "inferencefleet"
                    and r.headers.get("Content-Type") == "application/apply-patch+yaml"}

        # The children are applied one after the other: the Deployment can exist before the rest.
        wait_for(lambda: applied_kinds() >= children, f"server-side applies of {sorted(children)}")

        wait_for(lambda: has_condition(api, "llama", "SpecValid", "True"), "SpecValid=True")
        wait_for(lambda: has_condition(api, "llama", "Ready", "False"), "Ready=False before any pod is ready")
        metrics = wait_for(lambda: has_condition(api, "llama", "MetricsAvailable", "False"), "MetricsAvailable")
        assert "PROMETHEUS_URL" in metrics["message"]

        play_controller(api, "llama", ready=1)
        ready = wait_for(lambda: has_condition(api, "llama", "Ready", "True"), "Ready=True once a replica is ready")
        assert ready["reason"] == "ReplicasReady"
        status = get_pool(api, "llama")["status"]
        assert (status["readyReplicas"], status["desiredReplicas"]) == (1, 1)
        assert status["observedGeneration"] == pool_body["metadata"]["generation"]
        assert "inferencefleet.io/pool=llama" in status["selector"]
        assert status["quota"]["tier"] == "free"

    status_writes = [r for r in apiserver.requests() if r.method == "PATCH" and r.url.path.endswith("inferencepools/llama/status")]
    assert status_writes and all(r.headers["Content-Type"] == "application/merge-patch+json" for r in status_writes)
    assert all("spec" not in (r.data or {}) for r in status_writes)
    spec_writes = [r for r in apiserver.requests() if r.method == "PATCH" and "inferencepools/llama" in r.url.path
                   and not r.url.path.endswith("/status")]
    assert all("spec" not in (r.data or {}) and "status" not in (r.data or {}) for r in spec_writes)


def test_invalid_pool_reports_field_path_while_a_valid_neighbour_is_reconciled(
        apiserver: Apiserver, monkeypatch: pytest.MonkeyPatch) -> None:
    api = apiserver.api_client()
    broken = pool("broken")
    broken["spec"]["replicas"] = {"min": 5, "max": 2}
    with running_operator(monkeypatch, prometheus_url=None) as runner:
        create(api, example("quota.yaml"))
        create(api, broken)
        create(api, pool("fine"))
        invalid = wait_for(lambda: has_condition(api, "broken", "SpecValid", "False"), "SpecValid=False")
        assert invalid["reason"] == "InvalidSpec"
        assert "spec.replicas.min" in invalid["message"] and "max" in invalid["message"]
        assert condition(get_pool(api, "broken"), "Ready")["status"] == "False"
        wait_for(lambda: deployment(api, "fine"), "the valid pool's Deployment")
        wait_for(lambda: has_condition(api, "fine", "SpecValid", "True"), "SpecValid=True on the valid pool")
        events = wait_for(lambda: [e for e in client.CoreV1Api(api).list_namespaced_event("serving").items
                                   if e.involved_object.name == "broken"], "a Warning Event on the invalid pool")
        assert events[0].type == "Warning" and events[0].reason == "InvalidSpec"
        assert "spec.replicas.min" in events[0].message
        assert deployment(api, "broken") is None
    reconciles = runner.output.count("Handler 'reconcile' succeeded")
    assert reconciles == 2, "an invalid spec must not be retried"


STEP = 10
ITL_EDGES = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
TTFT_EDGES = (0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)


def busy_pool_history(pools: list[str], end: int) -> list[Point]:
    """Ten minutes of heavy load on one replica of each pool: 40 req/s, 30 waiting, 250 running."""
    times = list(range(end - 600, end + 1, STEP))
    points: list[Point] = []
    for name in pools:
        lbl = {"namespace": "serving", "inferencefleet_io_pool": name, "pod": f"{name}-0", "model_name": "llama"}

        def counter(metric: str, per_second: float, extra: dict[str, str] | None = None,
                    lbl: dict[str, str] = lbl) -> list[Point]:
            return [(metric, {**lbl, **(extra or {})}, t, 1000 + per_second * (t - times[0])) for t in times]

        points += counter("vllm:request_success_total", 40, {"finished_reason": "stop"})
        points += counter("vllm:prompt_tokens_total", 40 * 500)
        points += counter("vllm:generation_tokens_total", 40 * 200)
        points += [(m, lbl, t, v) for t in times for m, v in (
            ("vllm:num_requests_running", 250), ("vllm:num_requests_waiting", 30),
            ("vllm:kv_cache_usage_perc", 0.9), ("up", 1))]
        for metric, edges, bucket in (("vllm:inter_token_latency_seconds", ITL_EDGES, 0.075),
                                      ("vllm:time_to_first_token_seconds", TTFT_EDGES, 1.0)):
            for edge in (*edges, float("inf")):
                le = "+Inf" if edge == float("inf") else repr(edge)
                points += counter(f"{metric}_bucket", 40 * 200 if edge >= bucket else 0, {"le": le})
    return points


@pytest.fixture
def loaded_prometheus(tmp_path: Path, prometheus_binaries: None) -> Iterator[str]:
    """A real Prometheus holding heavy-load history for pools 'busy' and 'watched', up to now."""
    data = tmp_path / "tsdb"
    backfill(busy_pool_history(["busy", "watched"], int(time.time())), data)
    with prometheus(data) as url:
        yield url


def test_load_scales_a_managed_pool_and_only_records_a_shadow_decision(
        apiserver: Apiserver, monkeypatch: pytest.MonkeyPatch, loaded_prometheus: str) -> None:
    api = apiserver.api_client()
    with running_operator(monkeypatch, prometheus_url=loaded_prometheus):
        create(api, example("quota.yaml"))
        create(api, pool("busy"))
        create(api, pool("watched", mode="Shadow"))
        wait_for(lambda: has_condition(api, "busy", "MetricsAvailable", "True"), "MetricsAvailable=True")
        scaled = wait_for(lambda: (d := deployment(api, "busy")) is not None and d.spec.replicas > 1 and d,
                          "the Managed pool's Deployment to scale up")
        status = wait_for(lambda: (s := get_pool(api, "busy")["status"]).get("decisions") and s, "decisions")
        up = [d for d in status["decisions"] if d["action"] == "ScaleUp"]
        assert up and up[-1]["applied"] is True and up[-1]["from"] == 1 and up[-1]["to"] == scaled.spec.replicas
        assert "req/s" in up[-1]["reason"]
        events = wait_for(lambda: [e for e in client.CoreV1Api(api).list_namespaced_event("serving").items
                                   if e.involved_object.name == "busy" and e.reason == "ScaleUp"], "a ScaleUp Event")
        assert events[0].message == up[-1]["reason"]
        assert get_pool(api, "busy")["status"]["signals"]["requestRate"] == pytest.approx(40)

        shadow = wait_for(lambda: [d for d in get_pool(api, "watched")["status"].get("decisions", [])
                                   if d["action"] == "ScaleUp"], "the Shadow pool's decision")
        assert shadow[-1]["applied"] is False and shadow[-1]["to"] > 1

        quota = wait_for(lambda: (q := client.CustomObjectsApi(api).get_cluster_custom_object(
            GROUP, VERSION, "fleetquotas", "default")).get("status", {}).get("tiers") and q, "FleetQuota status")
        free = next(t for t in quota["status"]["tiers"] if t["name"] == "free")
        assert free["pools"] == 2
        assert scaled.spec.replicas <= free["gpus"] <= 8  # the free tier's limit in quota.yaml
        assert free["borrowedGpus"] == free["gpus"]  # the free tier is guaranteed nothing
        assert free["dollarsPerHour"] == pytest.approx(3.0 * free["gpus"])
        assert condition(quota, "OverBudget")["status"] == "False"
    versions = apiserver.history("apps/v1/deployments", "serving", "watched")
    assert versions and all(v["spec"]["replicas"] == 1 for v in versions)
    assert not [e for e in client.CoreV1Api(api).list_namespaced_event("serving").items
                if e.involved_object.name == "watched" and e.reason == "ScaleUp"]


def test_prometheus_outage_reports_missing_metrics_and_holds_replicas(
        apiserver: Apiserver, monkeypatch: pytest.MonkeyPatch) -> None:
    api = apiserver.api_client()
    with running_operator(monkeypatch, prometheus_url="http://127.0.0.1:9"):
        create(api, example("quota.yaml"))
        create(api, pool("blind"))
        missing = wait_for(lambda: has_condition(api, "blind", "MetricsAvailable", "False"), "MetricsAvailable=False")
        assert "query failed" in missing["message"]
        play_controller(api, "blind", ready=1)
        wait_for(lambda: has_condition(api, "blind", "Ready", "True"), "a later tick (Ready=True)")
    versions = apiserver.history("apps/v1/deployments", "serving", "blind")
    assert versions and all(v["spec"]["replicas"] == 1 for v in versions)
