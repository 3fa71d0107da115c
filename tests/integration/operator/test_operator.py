"""The live operator end to end: the real ``inferencefleet run`` process against the real control plane."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from inferencefleet.signals.testing import Point, backfill, prometheus

from .conftest import (
    GROUP,
    VERSION,
    ControlPlane,
    condition,
    create,
    deployment,
    events_of,
    example,
    get_pool,
    has_condition,
    managers,
    pool,
    running_operator,
    wait_for,
)


def test_pool_children_are_applied_server_side_owned_and_collected_by_the_garbage_collector(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    with running_operator(control_plane, tmp_path):
        create(api, example("quota.yaml"))
        create(api, pool("llama", namespace))
        made = wait_for(lambda: deployment(api, namespace, "llama"), "the Deployment")

        pool_body = get_pool(api, namespace, "llama")
        owner = made.metadata.owner_references[0]
        assert (owner.kind, owner.name, owner.uid, owner.controller, owner.block_owner_deletion) == (
            "InferencePool", "llama", pool_body["metadata"]["uid"], True, True)
        assert managers(made).get("inferencefleet") == "Apply", managers(made)
        for kind in ("service", "poddisruptionbudget", "podmonitor"):
            child = wait_for(lambda kind=kind: control_plane.kubectl(
                "get", kind, "llama", "-n", namespace, "-o", "yaml", check=False).returncode == 0, f"the {kind}")
            assert child
            body = control_plane.kubectl("get", kind, "llama", "-n", namespace, "-o", "json",
                                         "--show-managed-fields").stdout
            assert '"manager": "inferencefleet"' in body and '"operation": "Apply"' in body

        # The real Deployment controller and scheduler make a pod; kwok runs it on a fake GPU node.
        ready = wait_for(lambda: has_condition(api, namespace, "llama", "Ready", "True"), "Ready=True from a real pod")
        assert ready["reason"] == "ReplicasReady"
        pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="inferencefleet.io/pool=llama")
        assert [p.status.phase for p in pods.items] == ["Running"]
        assert pods.items[0].spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
        status = get_pool(api, namespace, "llama")["status"]
        assert (status["readyReplicas"], status["desiredReplicas"]) == (1, 1)
        assert status["observedGeneration"] == pool_body["metadata"]["generation"]
        assert "inferencefleet.io/pool=llama" in status["selector"]
        metrics = condition(get_pool(api, namespace, "llama"), "MetricsAvailable")
        assert metrics is not None and metrics["status"] == "False" and "PROMETHEUS_URL" in metrics["message"]

        written = get_pool(api, namespace, "llama")
        assert managers(written, "status").get("inferencefleet") == "Update", "status goes through /status"
        spec_owners = [e["manager"] for e in written["metadata"]["managedFields"]
                       if not e.get("subresource") and "f:spec" in (e.get("fieldsV1") or {})]
        assert "inferencefleet" not in spec_owners, f"the operator must never write spec: {spec_owners}"

    client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "inferencepools", "llama")
    wait_for(lambda: deployment(api, namespace, "llama") is None, "the garbage collector to delete the Deployment")
    wait_for(lambda: not client.CoreV1Api(api).list_namespaced_service(namespace).items,
             "the garbage collector to delete the Service")


def test_a_spec_the_server_admits_but_the_renderer_refuses_reports_the_field_and_spares_its_neighbour(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    broken = pool("broken", namespace)
    broken["spec"]["topology"] = {"gpu": {"type": "H100-80GB", "gpusPerNode": 4}, "tensorParallel": 8}
    with running_operator(control_plane, tmp_path) as operator:
        create(api, example("quota.yaml"))
        create(api, broken)
        create(api, pool("fine", namespace))
        invalid = wait_for(lambda: has_condition(api, namespace, "broken", "SpecValid", "False"), "SpecValid=False")
        assert invalid["reason"] == "Infeasible"
        assert "spec.topology" in invalid["message"], invalid["message"]
        wait_for(lambda: deployment(api, namespace, "fine"), "the valid pool's Deployment")
        wait_for(lambda: has_condition(api, namespace, "fine", "SpecValid", "True"), "SpecValid=True on the valid pool")
        events = wait_for(lambda: events_of(api, namespace, "broken", "Infeasible"), "a Warning Event on the invalid pool")
        assert events[0].type == "Warning" and "spec.topology" in events[0].message
        assert deployment(api, namespace, "broken") is None
    assert operator.output.count("Handler 'reconcile' succeeded") >= 2


STEP = 10
ITL_EDGES = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
TTFT_EDGES = (0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)


def busy_pool_history(namespace: str, pools: list[str], now: int) -> list[Point]:
    """Heavy load on one replica of each pool from ten minutes ago to ten minutes ahead (samples stay fresh
    however slowly the test runs): 40 req/s, 30 waiting, 250 running."""
    times = list(range(now - 600, now + 601, STEP))
    points: list[Point] = []
    for name in pools:
        lbl = {"namespace": namespace, "inferencefleet_io_pool": name, "pod": f"{name}-0", "model_name": "llama"}

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
def loaded_prometheus(tmp_path: Path, namespace: str, prometheus_binaries: None) -> Iterator[str]:
    """A real Prometheus holding heavy-load history for pools 'busy' and 'watched', up to now."""
    data = tmp_path / "tsdb"
    backfill(busy_pool_history(namespace, ["busy", "watched"], int(time.time())), data)
    with prometheus(data) as url:
        yield url


def test_load_scales_a_managed_pool_and_only_records_a_shadow_decision(
        control_plane: ControlPlane, namespace: str, tmp_path: Path, loaded_prometheus: str) -> None:
    api = control_plane.api()
    with running_operator(control_plane, tmp_path, prometheus_url=loaded_prometheus):
        create(api, example("quota.yaml"))
        create(api, pool("busy", namespace))
        create(api, pool("watched", namespace, mode="Shadow", capacity={"loadTest": {
            "requestsPerSecond": 5.0, "promptTokens": 500, "outputTokens": 200}}))
        wait_for(lambda: has_condition(api, namespace, "busy", "MetricsAvailable", "True"), "MetricsAvailable=True")
        scaled = wait_for(lambda: (d := deployment(api, namespace, "busy")) is not None and d.spec.replicas > 1
                          and d, "the Managed pool's Deployment to scale up")
        status = wait_for(lambda: (s := get_pool(api, namespace, "busy")["status"]).get("decisions") and s, "decisions")
        up = [d for d in status["decisions"] if d["action"] == "ScaleUp"]
        assert up and up[-1]["applied"] is True and up[-1]["from"] == 1 and up[-1]["to"] == scaled.spec.replicas
        assert "req/s" in up[-1]["reason"]
        events = wait_for(lambda: events_of(api, namespace, "busy", "ScaleUp"), "a ScaleUp Event")
        assert events[0].message == up[-1]["reason"]
        assert get_pool(api, namespace, "busy")["status"]["signals"]["requestRate"] == pytest.approx(40)
        sizing = status["sizing"]  # the numbers of the decision written with it
        assert sizing["desired"] == status["desiredReplicas"] == min(sizing["wanted"], sizing["quotaCap"])
        assert sizing["demand"] >= 40 and sizing["replicaRate"] > 0 and sizing["horizon"] == "1m"
        assert sizing["needed"] == pytest.approx(sizing["demand"] / sizing["replicaRate"], abs=1)  # ceil, rounded
        # The real ReplicaSet controller and scheduler place every replica on the fake GPU nodes.
        wait_for(lambda: get_pool(api, namespace, "busy")["status"].get("readyReplicas") == scaled.spec.replicas,
                 f"{scaled.spec.replicas} ready replicas (real pods)")

        described = control_plane.kubectl("describe", "ipool", "busy", "-n", namespace).stdout
        assert "Conditions:" in described and "MetricsAvailable" in described
        assert "ScaleUp" in described and up[-1]["reason"][:60] in " ".join(described.split())

        shadow = wait_for(lambda: [d for d in get_pool(api, namespace, "watched")["status"].get("decisions", [])
                                   if d["action"] == "ScaleUp"], "the Shadow pool's decision")
        assert shadow[-1]["applied"] is False and shadow[-1]["to"] > 1
        tested = get_pool(api, namespace, "watched")["status"]["sizing"]  # sized on its declared load test
        assert tested["loadTestFactor"] > 0 and tested["climbMargin"] > 1 and "loadTestFactor" not in sizing
        said = re.search(r"load test x([0-9.]+) step and prefill time", shadow[-1]["reason"])
        assert said and float(said.group(1)) == pytest.approx(tested["loadTestFactor"], abs=0.01)

        quota = wait_for(lambda: (q := client.CustomObjectsApi(api).get_cluster_custom_object(
            GROUP, VERSION, "fleetquotas", "default")).get("status", {}).get("tiers") and q, "FleetQuota status")
        free = next(t for t in quota["status"]["tiers"] if t["name"] == "free")
        assert free["pools"] == 2
        assert scaled.spec.replicas <= free["gpus"] <= 8  # the free tier's limit in quota.yaml
        assert free["borrowedGpus"] == free["gpus"]  # the free tier is guaranteed nothing
        assert free["dollarsPerHour"] == pytest.approx(3.0 * free["gpus"])
        assert condition(quota, "OverBudget")["status"] == "False"
    watched = deployment(api, namespace, "watched")
    assert (watched.spec.replicas, watched.metadata.generation) == (1, 1), "a Shadow pool's workload is never changed"
    assert not events_of(api, namespace, "watched", "ScaleUp")


def test_prometheus_outage_reports_missing_metrics_and_holds_replicas(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    with running_operator(control_plane, tmp_path, prometheus_url="http://127.0.0.1:9"):
        create(api, example("quota.yaml"))
        create(api, pool("blind", namespace))
        missing = wait_for(lambda: has_condition(api, namespace, "blind", "MetricsAvailable", "False"),
                           "MetricsAvailable=False")
        assert "query failed" in missing["message"]
        wait_for(lambda: has_condition(api, namespace, "blind", "Ready", "True"), "a later tick (Ready=True)")
    held = deployment(api, namespace, "blind")
    assert (held.spec.replicas, held.metadata.generation) == (1, 1)
