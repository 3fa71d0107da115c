"""The operator as a production controller on the real control plane: level-based repair and pruning,
per-pool isolation, restart-safe memory, leader election, pause, and its own metrics and probes."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import yaml
from kubernetes import client

from inferencefleet.planner.memory import MEMORY_VERSION

from .conftest import (
    GROUP,
    RELEASE_NAMESPACE,
    VERSION,
    ControlPlane,
    create,
    deployment,
    events_of,
    example,
    get_pool,
    has_condition,
    pool,
    running_operator,
    wait_for,
)
from .test_operator import loaded_prometheus  # noqa: F401  (fixture)

POOLS = (GROUP, VERSION)


def patch_pool(api: client.ApiClient, namespace: str, name: str, patch: dict[str, object]) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(*POOLS, namespace, "inferencepools", name, patch)


def test_deleted_and_hand_edited_children_are_restored_and_a_replaced_workload_is_pruned(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    with running_operator(control_plane, tmp_path):
        create(api, example("quota.yaml"))
        create(api, pool("llama", namespace))
        wait_for(lambda: has_condition(api, namespace, "llama", "Ready", "True"), "Ready=True")

        core.delete_namespaced_service("llama", namespace)
        wait_for(lambda: core.list_namespaced_service(namespace).items, "the deleted Service to be restored")
        control_plane.kubectl("scale", "deployment", "llama", "-n", namespace, "--replicas=5")
        wait_for(lambda: deployment(api, namespace, "llama").spec.replicas == 1, "the hand-edited replicas restored")
        repaired = wait_for(lambda: events_of(api, namespace, "llama", "Repaired"), "a Repaired Event")
        assert any("Service/llama is missing" in e.message for e in repaired)

        # nodesPerReplica 1 -> 2 turns the Deployment into a LeaderWorkerSet: the Deployment must go.
        patch_pool(api, namespace, "llama", {"spec": {"topology": {"nodesPerReplica": 2, "tensorParallel": 2}}})
        wait_for(lambda: deployment(api, namespace, "llama") is None, "the replaced Deployment to be deleted")
        wait_for(lambda: control_plane.kubectl("get", "lws", "llama", "-n", namespace, check=False).returncode == 0,
                 "the LeaderWorkerSet")
        # No LeaderWorkerSet controller runs here: its replicas never become ready, and the orphan must not count.
        ready = wait_for(lambda: has_condition(api, namespace, "llama", "Ready", "False"), "Ready=False without pods")
        assert ready["reason"] in ("NoReplicaReady", "WorkloadMissing"), ready
        assert not apps.list_namespaced_replica_set(namespace).items or wait_for(
            lambda: not client.CoreV1Api(api).list_namespaced_pod(namespace).items, "the old pods collected")


def refuse_updates_of(plane: ControlPlane, namespace: str, name: str) -> None:
    """A ValidatingAdmissionPolicy that makes the API server refuse every update of one Deployment."""
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": f"freeze-{namespace}"},
         "spec": {"failurePolicy": "Fail",
                  "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                          "operations": ["UPDATE"], "resources": ["deployments"]}]},
                  "validations": [{"expression": f"object.metadata.name != '{name}'",
                                   "message": f"deployment {name} is frozen by policy"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": f"freeze-{namespace}"},
         "spec": {"policyName": f"freeze-{namespace}", "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {
                      "matchLabels": {"kubernetes.io/metadata.name": namespace}}}}},
    ]))


def test_a_pool_the_api_server_refuses_is_reported_and_never_stops_the_fleet(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    with running_operator(control_plane, tmp_path):
        create(api, example("quota.yaml"))
        for name in ("broken", "follower"):
            body = pool(name, namespace, mode="External")
            body["spec"]["replicas"] = {"min": 1, "max": 4, "count": 1}
            create(api, body)
        wait_for(lambda: has_condition(api, namespace, "broken", "Ready", "True"), "the pool Ready")
        wait_for(lambda: has_condition(api, namespace, "follower", "Ready", "True"), "the other pool Ready")
        refuse_updates_of(control_plane, namespace, "broken")
        try:
            wait_for(lambda: control_plane.kubectl("annotate", "deployment", "broken", "-n", namespace, "--overwrite",
                                                   f"probe={time.monotonic()}", check=False).returncode != 0,
                     "the policy to take effect")
            control_plane.kubectl("scale", "ipool", "broken", "-n", namespace, "--replicas=3")
            failed = wait_for(lambda: has_condition(api, namespace, "broken", "Reconciled", "False"),
                              "Reconciled=False on the refused pool")
            assert "frozen by policy" in failed["message"], failed
            warning = wait_for(lambda: [e for e in events_of(api, namespace, "broken") if e.type == "Warning"],
                               "a Warning Event on the refused pool")
            assert "frozen by policy" in warning[0].message
            control_plane.kubectl("scale", "ipool", "follower", "-n", namespace, "--replicas=2")
            wait_for(lambda: deployment(api, namespace, "follower").spec.replicas == 2, "the other pool to follow")
            assert deployment(api, namespace, "broken").spec.replicas == 1
        finally:
            control_plane.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy",
                                  f"freeze-{namespace}", check=False)
        wait_for(lambda: deployment(api, namespace, "broken").spec.replicas == 3, "the pool to recover")
        wait_for(lambda: has_condition(api, namespace, "broken", "Reconciled", "True"), "Reconciled=True again")

        # Conditions cleared by hand through /status stay cleared until the operator has news (no stale cache).
        wait_for(lambda: get_pool(api, namespace, "follower")["status"].get("readyReplicas") == 2, "2 ready")
        control_plane.kubectl("patch", "ipool", "follower", "-n", namespace, "--subresource=status", "--type=merge",
                              "-p", json.dumps({"status": {"conditions": None}}))
        time.sleep(3)  # several 500 ms ticks
        assert get_pool(api, namespace, "follower")["status"].get("conditions") in (None, [])


def test_missing_signals_never_scale_a_pool_below_its_minimum_under_a_tight_quota(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    quota = example("quota.yaml")
    for tier in quota["spec"]["tiers"]:
        if tier["name"] == "free":
            tier["limit"] = {"gpus": 4}
    with running_operator(control_plane, tmp_path, prometheus_url="http://127.0.0.1:9"):
        create(api, quota)
        for index in range(6):
            create(api, pool(f"p{index}", namespace))
        wait_for(lambda: all(has_condition(api, namespace, f"p{i}", "MetricsAvailable", "False") for i in range(6)),
                 "every pool reporting missing metrics")
        time.sleep(3)
        replicas = [deployment(api, namespace, f"p{i}").spec.replicas for i in range(6)]
    assert replicas == [1] * 6, replicas


def test_a_restarted_operator_keeps_its_decisions(
        control_plane: ControlPlane, namespace: str, tmp_path: Path, loaded_prometheus: str) -> None:  # noqa: F811
    api = control_plane.api()
    with running_operator(control_plane, tmp_path, prometheus_url=loaded_prometheus) as first:
        create(api, example("quota.yaml"))
        create(api, pool("busy", namespace))
        wait_for(lambda: (d := deployment(api, namespace, "busy")) is not None and d.spec.replicas > 1, "a scale-up")
        time.sleep(5)
        before = deployment(api, namespace, "busy").spec.replicas
        memory = get_pool(api, namespace, "busy")["status"].get("plannerMemory")
        assert memory and json.loads(memory)["v"] == MEMORY_VERSION
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
    with running_operator(control_plane, tmp_path, prometheus_url=loaded_prometheus) as second:
        wait_for(lambda: "Leading as" in second.output, "the restarted operator to lead", 30)
        time.sleep(8)
        after = deployment(api, namespace, "busy")
        decisions = get_pool(api, namespace, "busy")["status"]["decisions"]
    assert after.spec.replicas == before, f"{before} replicas before the restart, {after.spec.replicas} after"
    assert [d["to"] for d in decisions if d["action"] in ("ScaleUp", "ScaleDown")][-1] == before


def lease_holder(plane: ControlPlane) -> str:
    lease = client.CoordinationV1Api(plane.api()).read_namespaced_lease("inferencefleet", RELEASE_NAMESPACE)
    return str(lease.spec.holder_identity or "")


def test_two_replicas_elect_one_leader_that_fails_over_within_15_seconds(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    with running_operator(control_plane, tmp_path) as one, running_operator(control_plane, tmp_path) as two:
        wait_for(lambda: "Leading as" in one.output + two.output, "a leader")
        leader, standby = (one, two) if "Leading as" in one.output else (two, one)
        create(api, example("quota.yaml"))
        create(api, pool("first", namespace))
        wait_for(lambda: has_condition(api, namespace, "first", "Ready", "True"), "the leader serving the pool")
        assert "Leading as" not in standby.output and "inferencepools" not in standby.output
        assert httpx.get(f"{standby.url}/readyz").status_code == 200
        assert httpx.get(f"{standby.url}/metrics").text.count("inferencefleet_leader 0.0") == 1

        holder = lease_holder(control_plane)
        leader.process.send_signal(signal.SIGKILL)  # no release: the standby must wait out the lease
        killed = time.monotonic()
        wait_for(lambda: lease_holder(control_plane) != holder, "the standby to take the Lease", 20)
        took = time.monotonic() - killed
        create(api, pool("second", namespace))
        wait_for(lambda: deployment(api, namespace, "second"), "the new leader to serve a new pool")
        assert took <= 15, f"failover took {took:.1f}s"
    assert len(events_of(api, namespace, "first", "Infeasible")) == 0


def test_a_paused_pool_is_frozen_until_the_annotation_goes(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    external = pool("frozen", namespace, mode="External", replicas={"min": 1, "max": 4, "count": 1})
    with running_operator(control_plane, tmp_path):
        create(api, example("quota.yaml"))
        create(api, external)
        wait_for(lambda: deployment(api, namespace, "frozen"), "the Deployment")
        control_plane.kubectl("annotate", "ipool", "frozen", "-n", namespace, "inferencefleet.io/paused=true")
        wait_for(lambda: has_condition(api, namespace, "frozen", "Paused", "True"), "Paused=True")
        control_plane.kubectl("scale", "ipool", "frozen", "-n", namespace, "--replicas=3")
        time.sleep(3)
        assert deployment(api, namespace, "frozen").spec.replicas == 1
        control_plane.kubectl("annotate", "ipool", "frozen", "-n", namespace, "inferencefleet.io/paused-")
        wait_for(lambda: deployment(api, namespace, "frozen").spec.replicas == 3, "the count applied once resumed")
        # the same tick writes the status after it scaled the Deployment
        wait_for(lambda: has_condition(api, namespace, "frozen", "Paused", "False"), "Paused=False once resumed")


def test_operator_metrics_and_probes(control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    with running_operator(control_plane, tmp_path) as operator:
        create(api, example("quota.yaml"))
        create(api, pool("seen", namespace))
        wait_for(lambda: has_condition(api, namespace, "seen", "Ready", "True"), "Ready=True")
        wait_for(lambda: httpx.get(f"{operator.url}/readyz").status_code == 200, "/readyz")
        assert httpx.get(f"{operator.url}/healthz").status_code == 200
        text = wait_for(lambda: (t := httpx.get(f"{operator.url}/metrics").text)
                        and 'pool="seen"' in t and t, "the pool's series")
        for name in ("inferencefleet_tick_duration_seconds_count", "inferencefleet_leader 1.0",
                     "inferencefleet_kube_api_requests_total", "inferencefleet_tier_budget_gpus",
                     f'inferencefleet_pool_condition{{condition="Ready",namespace="{namespace}",pool="seen",'
                     'status="True"}'):
            assert name in text, f"{name} not in /metrics"
