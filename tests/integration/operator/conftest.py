"""The real operator process against a real Kubernetes control plane (``cluster/localcluster.py``).

One control plane per test session: etcd, kube-apiserver (TLS, RBAC, OwnerReferencesPermissionEnforcement),
kube-controller-manager (Deployments, ReplicaSets, garbage collector), kube-scheduler and kwok, which
plays the kubelet for pods on fake GPU nodes. The chart is installed with the Helm built at the pinned
release, and the operator runs as a real ``inferencefleet run`` process under the chart's ServiceAccount
token, so it has exactly the chart's RBAC. Every test gets a namespace of its own.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client, config

from inferencefleet.signals.testing import free_port

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "cluster"))
import localcluster  # noqa: E402

EXAMPLES = ROOT / "policies/examples"
CHART = ROOT / "charts/inferencefleet"
RELEASE, RELEASE_NAMESPACE = "inferencefleet", "inferencefleet"
TIMEOUT = 60.0
"""Generous: a loaded 2-core machine runs the control plane, Prometheus and engines at once."""
T = TypeVar("T")
GROUP, VERSION = "inferencefleet.io", "v1alpha1"


def example(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text())


class ClusterAccess:
    """Admin access to a cluster through its kubeconfig: a Kubernetes client, and the kubectl and helm built
    from ``cluster/``."""

    kubeconfig: Path

    def api(self) -> client.ApiClient:
        """An admin client."""
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return localcluster.kubectl(self.kubeconfig, *args, input=input, check=check)

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(localcluster.BIN / "helm"), "--kubeconfig", str(self.kubeconfig), *args],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {done.stderr.strip()}")
        return done


@dataclass
class ControlPlane(ClusterAccess):
    """The session's running control plane and the operator's identity on it."""

    cluster: localcluster.Cluster
    operator_kubeconfig: Path | None = None
    """The chart's ServiceAccount token: the operator's exact RBAC (None: the operator runs as the chart's pod)."""

    @property
    def kubeconfig(self) -> Path:
        return self.cluster.kubeconfig


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """Start the control plane (building it first if needed), helm-install the chart, mint the operator's token."""
    try:
        cluster = localcluster.Cluster(tmp_path_factory.mktemp("cluster")).start()
    except localcluster.ClusterError as error:
        pytest.fail(f"the real control plane did not start: {error}\n(build it with `make cluster`)", pytrace=False)
    try:
        plane = ControlPlane(cluster, cluster.dir / "operator.kubeconfig")
        plane.helm("install", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, "--create-namespace", "--wait=false",
                   "--set", "prometheusUrl=")
        account = plane.kubectl("get", "serviceaccount", "-n", RELEASE_NAMESPACE, "-l",
                                "app.kubernetes.io/name=inferencefleet", "-o", "jsonpath={.items[0].metadata.name}")
        token = plane.kubectl("create", "token", account.stdout, "-n", RELEASE_NAMESPACE, "--duration", "24h")
        plane.operator_kubeconfig.write_text(localcluster.kubeconfig(cluster.server, cluster.ca,
                                                                     {"token": token.stdout.strip()}))
        yield plane
    finally:
        cluster.stop()


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace for one test; the test's FleetQuotas and namespace are deleted after it."""
    with fresh_namespace(control_plane) as name:
        yield name


@contextmanager
def fresh_namespace(plane: ClusterAccess) -> Iterator[str]:
    """A new namespace; its pools, every FleetQuota and the namespace are deleted after the block."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(plane.api()).create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        # Pools first and synchronously (they have no finalizers): the next test's quota must not count them.
        plane.kubectl("delete", "inferencepools", "--all", "-n", name, "--wait=true", "--timeout=60s", check=False)
        plane.kubectl("delete", "fleetquotas", "--all", "--wait=false", check=False)
        plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


def pool(name: str, namespace: str, mode: str = "Managed", **spec: Any) -> dict[str, Any]:
    """The 8B free-tier example pool renamed, in ``namespace``, with ``spec`` overrides."""
    body = copy.deepcopy(example("llama3-8b-free.yaml"))
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"]["autoscaling"]["mode"] = mode
    body["spec"].update(spec)
    return body


def create(api: client.ApiClient, body: dict[str, Any]) -> None:
    objects = client.CustomObjectsApi(api)
    if body["kind"] == "FleetQuota":
        objects.create_cluster_custom_object(GROUP, VERSION, "fleetquotas", body)
    else:
        objects.create_namespaced_custom_object(GROUP, VERSION, body["metadata"]["namespace"], "inferencepools", body)


def get_pool(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "inferencepools", name)
    return found


def condition(body: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def has_condition(api: client.ApiClient, namespace: str, name: str, type_: str, status: str) -> dict[str, Any] | None:
    found = condition(get_pool(api, namespace, name), type_)
    return found if found is not None and found["status"] == status else None


def deployment(api: client.ApiClient, namespace: str, name: str) -> Any:
    try:
        return client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def events_of(api: client.ApiClient, namespace: str, name: str, reason: str | None = None) -> list[Any]:
    return [e for e in client.CoreV1Api(api).list_namespaced_event(namespace).items
            if e.involved_object.name == name and (reason is None or e.reason == reason)]


def managers(obj: Any, subresource: str = "") -> dict[str, str]:
    """{field manager: operation} of an object's managedFields entries for ``subresource`` ('' = main)."""
    entries = obj["metadata"]["managedFields"] if isinstance(obj, dict) else obj.metadata.managed_fields
    out = {}
    for entry in entries:
        entry = entry if isinstance(entry, dict) else entry.to_dict()
        if (entry.get("subresource") or "") == subresource:
            out[entry["manager"]] = entry["operation"]
    return out


class Operator:
    """A running ``inferencefleet run`` process; its combined output is kept in a log file."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path, port: int) -> None:
        self.process = process
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        """Where its /metrics, /healthz and /readyz are served."""

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


STOP_TIMEOUT = 20
"""Seconds a stopped operator may take to exit (a Pod's grace period is 30 s)."""


@contextmanager
def running_operator(plane: ControlPlane, tmp_path: Path, prometheus_url: str | None = None,
                     tick_interval: str = "500ms", kubeconfig: Path | None = None,
                     env: dict[str, str] | None = None, check_clean: bool = True,
                     args: tuple[str, ...] = ()) -> Iterator[Operator]:
    """The real operator as a separate process, under the chart's ServiceAccount unless ``kubeconfig`` is given."""
    log = tmp_path / f"operator-{uuid.uuid4().hex[:6]}.log"
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "INFERENCEFLEET_"))}
    environment.update({"KUBECONFIG": str(kubeconfig or plane.operator_kubeconfig),
                        "INFERENCEFLEET_TICK_INTERVAL": tick_interval, "INFERENCEFLEET_PROMETHEUS_TIMEOUT": "2s",
                        "POD_NAMESPACE": RELEASE_NAMESPACE, "PYTHONUNBUFFERED": "1", "INFERENCEFLEET_METRICS_PORT": str(port),
                        "INFERENCEFLEET_METRICS_ADDRESS": "127.0.0.1",
                        **({"PROMETHEUS_URL": prometheus_url} if prometheus_url else {}), **(env or {})})
    environment.pop("KUBERNETES_SERVICE_HOST", None)
    with log.open("wb") as sink:
        process = subprocess.Popen([str(Path(sys.executable).with_name("inferencefleet")), "run", "--all-namespaces", *args],
                                   env=environment, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
    operator = Operator(process, log, port)
    try:
        yield operator
    except BaseException:
        print(f"--- operator output (last 6000 characters of {log}) ---\n{operator.output[-6000:]}")
        raise
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
            stopped = True
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
            stopped = False
    assert stopped, f"the operator did not stop within {STOP_TIMEOUT}s of SIGTERM:\n{operator.output[-3000:]}"
    if check_clean:
        assert "Traceback" not in operator.output, operator.output[-6000:]


def wait_for(check: Callable[[], T], what: str, timeout: float = TIMEOUT) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except client.ApiException as error:
            last = error
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}; last seen: {last!r}")
