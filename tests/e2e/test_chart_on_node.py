"""The chart with the images ``make image`` built, on a real node (``cluster/node.py``).

The operator runs as a real pod (containerd, runc, the CNI bridge) and reaches the API server through the
``kubernetes`` Service (kube-proxy, CoreDNS), under the chart's ServiceAccount, user and security context.
The pools' engine pods run the engine-sim image (its ``vllm`` shim) on the node. A real Prometheus on the
node's address scrapes them at their pod IPs over the node's bridge (found through the API as the rendered
PodMonitor selects them), and the operator pod queries it. The closed-loop scenario then runs with the assertions of ``test_closed_loop``, its load
sent to the pool's Service.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client

from inferencefleet.signals.testing import prometheus

from ..image.test_images import OPERATOR_IMAGE, USER, WRITE_PROBE
from ..integration.operator.conftest import (
    CHART,
    RELEASE,
    RELEASE_NAMESPACE,
    ControlPlane,
    create,
    deployment,
    example,
    fresh_namespace,
    has_condition,
    wait_for,
)
from .conftest import node
from .test_closed_loop import IN_FLIGHT as SCENARIO_IN_FLIGHT
from .test_closed_loop import (
    POOL,
    REQUEST,
    SCENARIO,
    SIGNALS_WINDOW,
    closed_loop,
    scrape_config,
    write_targets,
)

IN_FLIGHT = 4 * SCENARIO_IN_FLIGHT
"""The burst's clients. The operator drains the waiting requests over the measured cold start, about 10 s here
(the engine's startup probe runs every 10 s) against kwok's 2 s. With 64 clients the pool's status read backlog
5.59 req/s, demand 11.6 and needed 1 (a replica plans 19.7 req/s); 256 make about 25 req/s of backlog."""
POD_TIMEOUT = 180.0
"""A pod's start on the loaded 2-core machine: sandbox, image snapshot, Python start, the readiness probes."""
ENGINE_PORT = 8000


class TargetDiscovery:
    """Prometheus's view of the pool's pods (Debian's Prometheus has no Kubernetes discovery): every running pod
    the rendered PodMonitor selects, at its pod IP, listed from the API into a file Prometheus reads."""

    def __init__(self, api: client.ApiClient, path: Path) -> None:
        self.api = api
        self.path = path
        write_targets(path, {})

    def discover(self) -> None:
        pods = client.CoreV1Api(self.api).list_pod_for_all_namespaces(
            label_selector=f"inferencefleet.io/metrics=true,inferencefleet.io/pool={POOL}").items
        write_targets(self.path, {f"{p.status.pod_ip}:{ENGINE_PORT}": (p.metadata.namespace, p.metadata.name)
                                  for p in pods if p.status.phase == "Running" and p.status.pod_ip})

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            self.discover()


@pytest.fixture(scope="module")
def chart(real_node: tuple[ControlPlane, node.RealNode], tmp_path_factory: pytest.TempPathFactory,
          prometheus_binaries: None) -> Iterator[ControlPlane]:
    """Prometheus on the node's address and the chart installed with the operator image, reading it."""
    plane, _ = real_node
    repository, tag = OPERATOR_IMAGE.rsplit(":", 1)
    work = tmp_path_factory.mktemp("prometheus")
    discovery, stop = TargetDiscovery(plane.api(), work / "targets.json"), threading.Event()
    with prometheus(work / "tsdb", scrape_config(discovery.path), host=node.NODE_IP) as url:
        thread = threading.Thread(target=discovery.run, args=(stop,), daemon=True)
        thread.start()
        plane.helm("install", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, "--create-namespace",
                   "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
                   "--set", "image.pullPolicy=Never", "--set", "replicas=1", "--set", "tickInterval=1",
                   "--set", f"prometheusUrl={url}", "--set", f"signalsWindow={SIGNALS_WINDOW}",
                   "--set", "prometheusTimeout=2s")
        try:
            yield plane
        finally:
            stop.set()
            thread.join()


def ready_pod(api: client.ApiClient, namespace: str, selector: str) -> Any:
    """A wait_for check: the first Ready pod matching ``selector``."""
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items
    return next((p for p in pods if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])),
                None)


def in_container(plane: ControlPlane, pod: Any, *command: str) -> str:
    """``command``'s output in the pod's container (kubectl exec: the API server, the kubelet, containerd)."""
    return plane.kubectl("exec", "-n", pod.metadata.namespace, pod.metadata.name, "--", *command).stdout


@contextmanager
def operator_output_on_failure(plane: ControlPlane) -> Iterator[None]:
    """Print the operator pod's log and the pools' status when the block fails."""
    try:
        yield
    except BaseException:
        logs = plane.kubectl("logs", "-n", RELEASE_NAMESPACE, "-l", "app.kubernetes.io/name=inferencefleet",
                             "--tail=80", check=False)
        pools = plane.kubectl("get", "inferencepools", "-A", "-o", "yaml", check=False)
        print(f"--- operator pod log ---\n{logs.stdout}{logs.stderr}\n--- pools ---\n{pools.stdout[-6000:]}")
        raise


def operator_pod(plane: ControlPlane) -> Any:
    return wait_for(lambda: ready_pod(plane.api(), RELEASE_NAMESPACE, "app.kubernetes.io/name=inferencefleet"),
                    "the operator pod Ready (its /readyz)", POD_TIMEOUT)


def test_the_chart_runs_the_operator_image_on_a_real_node_and_it_serves_a_pool(chart: ControlPlane) -> None:
    api = chart.api()
    operator = operator_pod(chart)
    assert operator.spec.node_name == node.NAME
    status = dict(line.split(":\t", 1) for line in in_container(chart, operator, "cat", "/proc/1/status").splitlines())
    uid, gid = USER.split(":")
    assert status["Uid"].split() == [uid] * 4 and status["Gid"].split() == [gid] * 4
    assert int(status["CapEff"], 16) == 0, "the chart drops every capability"
    assert status["NoNewPrivs"] == "1", "allowPrivilegeEscalation: false"
    assert status["Seccomp"] == "2", "the RuntimeDefault seccomp profile filters the operator's system calls"
    root = next(line.split() for line in in_container(chart, operator, "cat", "/proc/1/mounts").splitlines()
                if line.split()[1] == "/")
    assert "ro" in root[3].split(","), f"the root filesystem is mounted read-write: {root}"
    assert "written outside /tmp: []" in in_container(chart, operator, "python3", "-c", WRITE_PROBE)

    with fresh_namespace(chart) as namespace, operator_output_on_failure(chart):
        create(api, example("quota.yaml"))
        create(api, {**SCENARIO, "metadata": {**SCENARIO["metadata"], "namespace": namespace}})
        wait_for(lambda: has_condition(api, namespace, POOL, "SpecValid", "True"), "SpecValid=True in the pool's status")
        made = wait_for(lambda: deployment(api, namespace, POOL), "the pool's Deployment")
        assert made.metadata.owner_references[0].name == POOL

        engine = wait_for(lambda: ready_pod(api, namespace, f"inferencefleet.io/pool={POOL}"),
                          "the engine-sim pod Ready (its /health)", POD_TIMEOUT)
        assert engine.spec.node_name == node.NAME
        assert engine.status.container_statuses[0].restart_count == 0
        # The host reaches the pod over the node's bridge, as Prometheus scraping it does.
        with urllib.request.urlopen(f"http://{engine.status.pod_ip}:{ENGINE_PORT}/metrics", timeout=10) as response:
            assert "vllm:num_requests_waiting" in response.read().decode()


class ServiceLoad:
    """Closed-loop clients of the pool's Service through kube-proxy, one connection per request, so that each
    request goes to one of the Service's ready endpoints at random."""

    def __init__(self, api: client.ApiClient, namespace: str, session: aiohttp.ClientSession) -> None:
        self.api = api
        self.namespace = namespace
        self.session = session
        self.address: str | None = None
        self.lookup = asyncio.Lock()

    async def url(self) -> str:
        """The Service's cluster address, once the operator has applied it (one lookup for every client)."""
        async with self.lookup:
            while self.address is None:
                self.address = await asyncio.to_thread(self.cluster_ip)
                if self.address is None:
                    await asyncio.sleep(0.5)
        return f"http://{self.address}:{ENGINE_PORT}/v1/completions"

    def cluster_ip(self) -> str | None:
        try:
            return str(client.CoreV1Api(self.api).read_namespaced_service(POOL, self.namespace).spec.cluster_ip)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    async def client(self) -> None:
        """One closed-loop client until cancelled. While no engine is ready kube-proxy refuses the connection:
        the client retries, as one would."""
        url = await self.url()
        while True:
            try:
                async with self.session.post(url, json=REQUEST) as response:
                    assert response.status == 200, await response.text()
                    async for _ in response.content:
                        pass
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.2)


async def test_the_closed_loop_scenario_on_a_real_node(chart: ControlPlane) -> None:
    api = chart.api()
    await asyncio.to_thread(operator_pod, chart)
    with fresh_namespace(chart) as namespace, operator_output_on_failure(chart):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0)) as session:
            await closed_loop(api, namespace, ServiceLoad(api, namespace, session).client, IN_FLIGHT)
