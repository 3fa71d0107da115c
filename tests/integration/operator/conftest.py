"""The real operator (kopf) against the enriched kmock API server, with or without a real Prometheus.

``apiserver`` runs an EnrichingEmulator on its own event loop in a daemon thread, serving the
built-in kinds, our CRDs, LeaderWorkerSet and PodMonitor. Tests talk to it with the real
``kubernetes`` client and play the Deployment controller themselves (no pods here).
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import kmock
import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client

from .emulator import EnrichingEmulator

ROOT = Path(__file__).resolve().parents[3]
CRDS = sorted((ROOT / "crds").glob("*.yaml"))
THIRD_PARTY = {
    "leaderworkerset.x-k8s.io/v1/leaderworkersets": ("LeaderWorkerSet", {"status", "scale"}),
    "monitoring.coreos.com/v1/podmonitors": ("PodMonitor", set()),
}
"""Kinds the renderer emits whose CRDs we do not own: declared as a cluster with them installed serves them."""
NAMESPACES = ("default", "serving")
TIMEOUT = 45.0
"""Generous: a loaded 2-core machine runs six suites at once."""
T = TypeVar("T")
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


class Apiserver:
    """A running emulator: its URL, a kubernetes ApiClient for it, and thread-safe inspection."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.emulator = EnrichingEmulator()
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self.emulator.resources.load_bundled()
        self.emulator.register_crd_files(str(p) for p in CRDS)
        for resource, (kind, subresources) in THIRD_PARTY.items():
            info = self.emulator.resources[resource]
            info.kind, info.namespaced, info.subresources = kind, True, subresources
            info.verbs = {"create", "delete", "get", "list", "patch", "update", "watch"}
        async with self.emulator, kmock.Server(self.emulator, host="127.0.0.1") as server:
            for name in NAMESPACES:
                self.emulator.objects["v1/namespaces", None, name] = {
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "resourceVersion": "1"}}
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the kmock API server did not start within 30s")

    def stop(self) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the emulator's loop (no torn reads while it serves requests)."""
        async def run() -> T:
            return fn()
        future: Future[T] = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return future.result(10)

    def requests(self) -> list[kmock.Request]:
        """Every request received so far."""
        return self.call(lambda: list(self.emulator))

    def history(self, resource: str, namespace: str | None, name: str) -> list[dict[str, Any]]:
        """Every stored version of an object (oldest first; empty if never created)."""
        def read() -> list[dict[str, Any]]:
            key = (kmock.resource(resource), namespace, name)
            if key not in self.emulator.objects:
                return []
            return [copy.deepcopy(v.raw) for v in self.emulator.objects[key].history if v is not None]
        return self.call(read)

    def api_client(self) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)


@pytest.fixture
def apiserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Apiserver]:
    """An emulated API server; KUBECONFIG points at it for the operator."""
    server = Apiserver()
    server.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": server.url}}],
        "users": [{"name": "kmock", "user": {"token": "test"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
    }))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield server
    server.stop()




@contextmanager
def running_operator(monkeypatch: pytest.MonkeyPatch, prometheus_url: str | None,
                     tick_interval: str = "500ms") -> Iterator[KopfRunner]:
    """The real operator (kopf run -m inferencefleet.handlers.main -A --standalone) in a thread."""
    monkeypatch.setenv("INFERENCEFLEET_TICK_INTERVAL", tick_interval)
    if prometheus_url:
        monkeypatch.setenv("PROMETHEUS_URL", prometheus_url)
        monkeypatch.setenv("INFERENCEFLEET_PROMETHEUS_TIMEOUT", "2s")
    else:
        monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    args = ["run", "--standalone", "--all-namespaces", "-m", "inferencefleet.handlers.main"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
    assert runner.exit_code == 0, runner.output
    assert "Traceback" not in runner.output, runner.output


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
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}; last seen: {last!r}")
