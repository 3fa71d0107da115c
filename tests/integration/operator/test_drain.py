"""A scale-in removes the replicas with the least work in flight: the operator marks each ready pod with its
requests in flight (from a real Prometheus) and the real ReplicaSet controller removes the cheapest first.
Replicas still starting go before any ready one, which is what giving them back (planner.autoscale) relies on."""

from __future__ import annotations

import time
from pathlib import Path

from kubernetes import client

from inferencefleet.planner.drain import DELETION_COST
from inferencefleet.signals.testing import Point, backfill, prometheus

from .conftest import (
    ControlPlane,
    create,
    deployment,
    events_of,
    example,
    pool,
    running_operator,
    wait_for,
)

IN_FLIGHT = (50, 0, 20)
"""Running requests on the first, second and third pod (none waiting)."""


def live_pods(api: client.ApiClient, namespace: str, name: str) -> dict[str, bool]:
    """{pod: ready} of the pool's pods that are not terminating."""
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"inferencefleet.io/pool={name}").items
    return {p.metadata.name: any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or ())
            for p in pods if not p.metadata.deletion_timestamp}


def ready_pods(api: client.ApiClient, namespace: str, name: str) -> list[str]:
    return sorted(pod for pod, ready in live_pods(api, namespace, name).items() if ready)


def in_flight_history(namespace: str, name: str, pods: list[str], now: int) -> list[Point]:
    points: list[Point] = []
    for pod, running in zip(pods, IN_FLIGHT, strict=True):
        labels = {"namespace": namespace, "inferencefleet_io_pool": name, "pod": pod}
        for at in range(now - 300, now + 601, 10):
            points += [("vllm:num_requests_running", labels, at, running),
                       ("vllm:num_requests_waiting", labels, at, 0), ("up", labels, at, 1)]
    return points


def test_a_scale_in_keeps_the_busiest_replica(
        control_plane: ControlPlane, namespace: str, tmp_path: Path, prometheus_binaries: None) -> None:
    api = control_plane.api()
    external = pool("drained", namespace, mode="External", replicas={"min": 1, "max": 4, "count": 3})
    with running_operator(control_plane, tmp_path):
        create(api, example("quota.yaml"))
        create(api, external)
        pods = wait_for(lambda: len(p := ready_pods(api, namespace, "drained")) == 3 and p, "3 ready pods")
    data = tmp_path / "tsdb"
    backfill(in_flight_history(namespace, "drained", pods, int(time.time())), data)
    with prometheus(data) as url, running_operator(control_plane, tmp_path, prometheus_url=url):
        control_plane.kubectl("scale", "ipool", "drained", "-n", namespace, "--replicas=1")
        wait_for(lambda: deployment(api, namespace, "drained").spec.replicas == 1, "the Deployment to scale in")
        left = wait_for(lambda: (p := ready_pods(api, namespace, "drained")) == [pods[0]] and p,
                        "only the busiest pod left")
        events = wait_for(lambda: [e for e in events_of(api, namespace, "drained", "ScaledToCount") if "-> 1" in e.message],
                          "the scale-in's Event")
    assert left == [pods[0]]
    kept = client.CoreV1Api(api).read_namespaced_pod(pods[0], namespace)
    assert kept.metadata.annotations[DELETION_COST] == "50"
    assert events[0].message.endswith(f"removing the least busy: {pods[1]} (0 in flight), {pods[2]} (20 in flight)")


def test_a_scale_in_removes_the_replicas_still_starting_before_a_ready_one(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    nodes = [n.metadata.name for n in client.CoreV1Api(api).list_node().items]
    with running_operator(control_plane, tmp_path):
        create(api, example("quota.yaml"))
        create(api, pool("starting", namespace, mode="External", replicas={"min": 1, "max": 4, "count": 1}))
        first = wait_for(lambda: len(p := ready_pods(api, namespace, "starting")) == 1 and p, "1 ready pod")
        for node in nodes:  # new pods stay Pending: replicas still starting
            control_plane.kubectl("cordon", node)
        try:
            control_plane.kubectl("scale", "ipool", "starting", "-n", namespace, "--replicas=3")
            wait_for(lambda: sorted(live_pods(api, namespace, "starting").values()) == [False, False, True],
                     "two pods starting beside the ready one")
            control_plane.kubectl("scale", "ipool", "starting", "-n", namespace, "--replicas=1")
            left = wait_for(lambda: list(p := live_pods(api, namespace, "starting")) == first and p,
                            "only the ready pod left")
        finally:
            for node in nodes:
                control_plane.kubectl("uncordon", node, check=False)
    assert left == {first[0]: True}
