"""The e2e scenarios on a cluster reached only through its kubeconfig, with everything in the cluster.

The cluster is the one ``E2E_KUBECONFIG`` names (``make e2e E2E_KUBECONFIG=...``, ``make e2e-kind``) or, by
default, a control plane with a real node started by ``conftest.e2e_cluster``. In it: the chart with the
operator image (the operator as a pod under the chart's ServiceAccount, user and security context);
Prometheus (``incluster.py``) discovering the pools' pods through the API and scraping them as the rendered
PodMonitor says; the pools' engine pods (the engine-sim image's ``vllm`` shim); and the load, as pods running
``inferencefleet load`` against the pool's Service. The suite itself only calls the API server, through which
it also queries Prometheus. The closed-loop scenario runs with the assertions of ``test_closed_loop``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml
from kubernetes import client

from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.render.options import RenderOptions
from inferencefleet.render.workloads import render_pool

from ..image.test_images import USER, WRITE_PROBE
from ..integration.operator.conftest import (
    CHART,
    RELEASE,
    RELEASE_NAMESPACE,
    create,
    deployment,
    example,
    fresh_namespace,
    has_condition,
    wait_for,
)
from . import incluster
from .conftest import SCENARIO_ENGINE_IMAGE, E2ECluster
from .test_closed_loop import IN_FLIGHT as SCENARIO_IN_FLIGHT
from .test_closed_loop import POOL, REQUEST, SCENARIO, SIGNALS_WINDOW, closed_loop

SCRAPE_INTERVAL = "1s"
"""The rendered PodMonitors' interval (the chart's scrapeInterval): five scrapes in the signals window."""
IN_FLIGHT = 4 * SCENARIO_IN_FLIGHT
"""The burst's clients. The operator drains the waiting requests over the measured cold start, about 10 s on a
real node (the engine's startup probe runs every 10 s) against kwok's 2 s. With 64 clients the pool's status
read backlog 5.59 req/s, demand 11.6 and needed 1 (a replica plans 19.7 req/s); 256 make about 25 req/s of
backlog."""
POD_TIMEOUT = 180.0
"""A pod's start on a loaded 2-core machine: sandbox, image snapshot, Python start, the readiness probes."""
ENGINE_PORT = 8000
GPUS_NEEDED = SCENARIO["spec"]["replicas"]["max"]


def scenario_pod_monitor() -> dict[str, Any]:
    """The PodMonitor the operator renders for the scenario's pool with the chart's scrapeInterval."""
    pool = InferencePool.model_validate(SCENARIO)
    objects = render_pool(pool, replicas=1, options=RenderOptions(scrape_interval=SCRAPE_INTERVAL))
    [monitor] = [o for o in objects if o["kind"] == "PodMonitor"]
    return monitor


def require_gpu_nodes(cluster: E2ECluster) -> None:
    """Fail saying what to do when no node can take the scenario's pods (one nvidia.com/gpu each)."""
    nodes = client.CoreV1Api(cluster.api()).list_node().items
    gpus = sum(int((n.status.allocatable or {}).get("nvidia.com/gpu", "0")) for n in nodes)
    if gpus < GPUS_NEEDED:
        pytest.fail(f"the cluster's nodes advertise {gpus} allocatable nvidia.com/gpu; the scenario needs "
                    f"{GPUS_NEEDED}. On CPU nodes, advertise fake GPUs as an extended resource: kubectl patch node "
                    "NODE --subresource=status --type=json -p "
                    "'[{\"op\":\"add\",\"path\":\"/status/capacity/nvidia.com~1gpu\",\"value\":\"4\"}]'",
                    pytrace=False)


def ready_pod(api: client.ApiClient, namespace: str, selector: str) -> Any:
    """A wait_for check: the first Ready pod matching ``selector``."""
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items
    return next((p for p in pods if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])),
                None)


@pytest.fixture(scope="module")
def installed(e2e_cluster: E2ECluster) -> Iterator[E2ECluster]:
    """Prometheus and the chart with the operator image, in the cluster; both removed afterwards."""
    require_gpu_nodes(e2e_cluster)
    repository, tag = e2e_cluster.operator_image.rsplit(":", 1)
    prometheus = incluster.prometheus_objects(e2e_cluster.prometheus_image,
                                              incluster.scrape_job("engines", scenario_pod_monitor()["spec"]))
    try:
        e2e_cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(prometheus))
        # upgrade --install: a run killed before its teardown left the release behind.
        e2e_cluster.helm("upgrade", "--install", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, "--create-namespace",
                         "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
                         "--set", "image.pullPolicy=IfNotPresent", "--set", "replicas=1", "--set", "tickInterval=1",
                         "--set", f"prometheusUrl={incluster.PROMETHEUS_URL}",
                         "--set", f"signalsWindow={SIGNALS_WINDOW}", "--set", f"scrapeInterval={SCRAPE_INTERVAL}",
                         "--set", "prometheusTimeout=2s")
        wait_for(lambda: ready_pod(e2e_cluster.api(), incluster.PROMETHEUS_NAMESPACE, "app.kubernetes.io/name=prometheus"),
                 "the Prometheus pod Ready", POD_TIMEOUT)
        yield e2e_cluster
    finally:
        e2e_cluster.kubectl("delete", "namespace", incluster.PROMETHEUS_NAMESPACE, "--timeout=120s", check=False)
        e2e_cluster.kubectl("delete", "clusterrole,clusterrolebinding", "inferencefleet-e2e-prometheus", check=False)
        e2e_cluster.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", "--ignore-not-found")


def in_container(cluster: E2ECluster, pod: Any, *command: str) -> str:
    """``command``'s output in the pod's container (kubectl exec: the API server, the kubelet, the runtime)."""
    return cluster.kubectl("exec", "-n", pod.metadata.namespace, pod.metadata.name, "--", *command).stdout


@contextmanager
def operator_output_on_failure(cluster: E2ECluster) -> Iterator[None]:
    """Print the operator pod's log and the pools' status when the block fails."""
    try:
        yield
    except BaseException:
        logs = cluster.kubectl("logs", "-n", RELEASE_NAMESPACE, "-l", "app.kubernetes.io/name=inferencefleet",
                               "--tail=80", check=False)
        pools = cluster.kubectl("get", "inferencepools", "-A", "-o", "yaml", check=False)
        print(f"--- operator pod log ---\n{logs.stdout}{logs.stderr}\n--- pools ---\n{pools.stdout[-6000:]}")
        raise


def operator_pod(cluster: E2ECluster) -> Any:
    return wait_for(lambda: ready_pod(cluster.api(), RELEASE_NAMESPACE, "app.kubernetes.io/name=inferencefleet"),
                    "the operator pod Ready (its /readyz)", POD_TIMEOUT)


def test_the_chart_runs_the_operator_image_and_prometheus_scrapes_its_pool(installed: E2ECluster) -> None:
    api = installed.api()
    operator = operator_pod(installed)
    status = dict(line.split(":\t", 1)
                  for line in in_container(installed, operator, "cat", "/proc/1/status").splitlines())
    uid, gid = USER.split(":")
    assert status["Uid"].split() == [uid] * 4 and status["Gid"].split() == [gid] * 4
    assert int(status["CapEff"], 16) == 0, "the chart drops every capability"
    assert status["NoNewPrivs"] == "1", "allowPrivilegeEscalation: false"
    assert status["Seccomp"] == "2", "the RuntimeDefault seccomp profile filters the operator's system calls"
    root = next(line.split() for line in in_container(installed, operator, "cat", "/proc/1/mounts").splitlines()
                if line.split()[1] == "/")
    assert "ro" in root[3].split(","), f"the root filesystem is mounted read-write: {root}"
    assert "written outside /tmp: []" in in_container(installed, operator, "python3", "-c", WRITE_PROBE)

    with fresh_namespace(installed) as namespace, operator_output_on_failure(installed):
        create(api, example("quota.yaml"))
        create(api, {**SCENARIO, "metadata": {**SCENARIO["metadata"], "namespace": namespace}})
        wait_for(lambda: has_condition(api, namespace, POOL, "SpecValid", "True"), "SpecValid=True in the pool's status")
        made = wait_for(lambda: deployment(api, namespace, POOL), "the pool's Deployment")
        assert made.metadata.owner_references[0].name == POOL
        applied = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "monitoring.coreos.com", "v1", namespace, "podmonitors", POOL)
        assert applied["spec"] == scenario_pod_monitor()["spec"], "Prometheus scrapes what the PodMonitor says"

        engine = wait_for(lambda: ready_pod(api, namespace, f"inferencefleet.io/pool={POOL}"),
                          "the engine-sim pod Ready (its /health)", POD_TIMEOUT)
        assert engine.status.container_statuses[0].restart_count == 0
        series = wait_for(lambda: incluster.query(installed, f'vllm:num_requests_waiting{{namespace="{namespace}"}}'),
                          "Prometheus to scrape the engine pod")
        assert [s["metric"]["pod"] for s in series] == [engine.metadata.name]
        assert series[0]["metric"]["inferencefleet_io_pool"] == POOL


async def test_the_closed_loop_scenario_with_the_load_in_the_cluster(installed: E2ECluster) -> None:
    api = installed.api()
    await asyncio.to_thread(operator_pod, installed)
    with fresh_namespace(installed) as namespace, operator_output_on_failure(installed):
        load = incluster.LoadPods(api, namespace, SCENARIO_ENGINE_IMAGE,
                                  f"http://{POOL}:{ENGINE_PORT}/v1/completions", REQUEST)
        await closed_loop(api, namespace, load, IN_FLIGHT)
