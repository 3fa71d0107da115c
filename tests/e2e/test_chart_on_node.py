"""The chart with the image ``make image`` built, on a real node (``cluster/node.py``): the operator runs as a
real pod (containerd, runc, the CNI bridge) and reaches the API server through the ``kubernetes`` Service
(kube-proxy), under the chart's ServiceAccount, user and security context. It serves the closed-loop
scenario's pool, whose engine-sim pod (the image's ``vllm`` shim) runs on the node and becomes Ready."""

from __future__ import annotations

import urllib.request
import uuid
from typing import Any

from kubernetes import client

from ..image.test_images import OPERATOR_IMAGE, USER, WRITE_PROBE
from ..integration.operator.conftest import (
    CHART,
    RELEASE,
    RELEASE_NAMESPACE,
    ControlPlane,
    create,
    deployment,
    example,
    has_condition,
    wait_for,
)
from .conftest import node
from .test_closed_loop import POOL, SCENARIO

POD_TIMEOUT = 180.0
"""A pod's start on the loaded 2-core machine: sandbox, image snapshot, Python start, the readiness probes."""


def ready_pod(api: client.ApiClient, namespace: str, selector: str) -> Any:
    """A wait_for check: the first Ready pod matching ``selector``."""
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items
    return next((p for p in pods if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])),
                None)


def in_container(plane: ControlPlane, pod: Any, *command: str) -> str:
    """``command``'s output in the pod's container (kubectl exec: the API server, the kubelet, containerd)."""
    return plane.kubectl("exec", "-n", pod.metadata.namespace, pod.metadata.name, "--", *command).stdout


def test_the_chart_runs_the_operator_image_on_a_real_node_and_it_serves_a_pool(
        real_node: tuple[ControlPlane, node.RealNode]) -> None:
    plane, _ = real_node
    api = plane.api()
    repository, tag = OPERATOR_IMAGE.rsplit(":", 1)
    plane.helm("install", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, "--create-namespace",
               "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
               "--set", "image.pullPolicy=Never", "--set", "replicas=1", "--set", "tickInterval=1",
               "--set", "prometheusUrl=")

    operator = wait_for(lambda: ready_pod(api, RELEASE_NAMESPACE, "app.kubernetes.io/name=inferencefleet"),
                        "the operator pod Ready (its /readyz)", POD_TIMEOUT)
    assert operator.spec.node_name == node.NAME
    status = dict(line.split(":\t", 1) for line in in_container(plane, operator, "cat", "/proc/1/status").splitlines())
    uid, gid = USER.split(":")
    assert status["Uid"].split() == [uid] * 4 and status["Gid"].split() == [gid] * 4
    assert int(status["CapEff"], 16) == 0, "the chart drops every capability"
    assert status["NoNewPrivs"] == "1", "allowPrivilegeEscalation: false"
    assert status["Seccomp"] == "2", "the RuntimeDefault seccomp profile filters the operator's system calls"
    root = next(line.split() for line in in_container(plane, operator, "cat", "/proc/1/mounts").splitlines()
                if line.split()[1] == "/")
    assert "ro" in root[3].split(","), f"the root filesystem is mounted read-write: {root}"
    assert "written outside /tmp: []" in in_container(plane, operator, "python3", "-c", WRITE_PROBE)

    namespace = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    create(api, example("quota.yaml"))
    create(api, {**SCENARIO, "metadata": {**SCENARIO["metadata"], "namespace": namespace}})
    wait_for(lambda: has_condition(api, namespace, POOL, "SpecValid", "True"), "SpecValid=True in the pool's status")
    made = wait_for(lambda: deployment(api, namespace, POOL), "the pool's Deployment")
    assert made.metadata.owner_references[0].name == POOL

    engine = wait_for(lambda: ready_pod(api, namespace, f"inferencefleet.io/pool={POOL}"),
                      "the engine-sim pod Ready (its /health)", POD_TIMEOUT)
    assert engine.spec.node_name == node.NAME
    assert engine.status.container_statuses[0].restart_count == 0
    # The host reaches the pod over the node's bridge, as a Prometheus scraping it does.
    with urllib.request.urlopen(f"http://{engine.status.pod_ip}:8000/metrics", timeout=10) as response:
        assert "vllm:num_requests_waiting" in response.read().decode()
