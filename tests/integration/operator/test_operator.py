"""The live operator end to end: kopf + kube/ + handlers/ against the emulated API server."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from .conftest import ROOT, Apiserver, running_operator, wait_for

GROUP, VERSION = "inferencefleet.io", "v1alpha1"
EXAMPLES = ROOT / "policies/examples"


def example(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text())


def pool(name: str, mode: str = "Managed", **spec: Any) -> dict[str, Any]:
    """The 8B free-tier example pool renamed, in namespace serving, with ``spec`` overrides."""
    body = copy.deepcopy(example("llama3-8b-free.yaml"))
    body["metadata"] = {"name": name, "namespace": "serving"}
    body["spec"]["autoscaling"]["mode"] = mode
    body["spec"].update(spec)
    return body


def create(api: client.ApiClient, body: dict[str, Any]) -> None:
    objects = client.CustomObjectsApi(api)
    if body["kind"] == "FleetQuota":
        objects.create_cluster_custom_object(GROUP, VERSION, "fleetquotas", body)
    else:
        objects.create_namespaced_custom_object(GROUP, VERSION, body["metadata"]["namespace"], "inferencepools", body)


def get_pool(api: client.ApiClient, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, "serving", "inferencepools", name)
    return found


def condition(body: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def has_condition(api: client.ApiClient, name: str, type_: str, status: str) -> dict[str, Any] | None:
    found = condition(get_pool(api, name), type_)
    return found if found is not None and found["status"] == status else None


def deployment(api: client.ApiClient, name: str) -> Any:
    try:
        return client.AppsV1Api(api).read_namespaced_deployment(name, "serving")
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def play_controller(api: client.ApiClient, name: str, ready: int) -> None:
    """What the Deployment controller would do: report replicas and ready replicas."""
    current = deployment(api, name)
    client.AppsV1Api(api).patch_namespaced_deployment_status(
        name, "serving", {"status": {"replicas": current.spec.replicas, "readyReplicas": ready}})


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
        kinds = {r.url.path.split("/")[-2] for r in apiserver.requests()
                 if r.method == "PATCH" and r.params.get("fieldManager") == "inferencefleet"
                 and r.headers.get("Content-Type") == "application/apply-patch+yaml"}
        assert kinds >= {"deployments", "services", "poddisruptionbudgets", "podmonitors"}

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
