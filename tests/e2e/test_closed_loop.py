"""The closed loop end to end: load -> engine metrics -> Prometheus scrape -> operator tick -> Deployment replicas.

The real operator process runs against the real control plane (``cluster/localcluster.py``) under the
chart's RBAC and reads a real Prometheus. The real Deployment and ReplicaSet controllers and the
scheduler turn the operator's replicas into pods on fake GPU nodes, which kwok reports Running and
Ready. No GPU or engine runs there, so the test stands one engine simulator in for each Ready pod
(started with the flags of the pod's container, scraped by Prometheus under the pod's labels) and
plays the pool's Service (closed-loop clients spread over the ready engines by fewest requests in
flight). The pool is ``e2e/scenarios/closed-loop.yaml``, the scenario ``e2e/README.md`` runs on kind.

When the burst ends its clients hang up (the engine drops their requests at once) and one client
keeps a request in flight. A pool with no requests at all is sized for the default request shape
(1024 prompt and 256 output tokens: 1.7 req/s per replica instead of 19), so its scale-down waits
for the forecast to decay (about 45 s here) whatever the delay; with the measured shape the
forecast needs one replica as soon as the queue is gone, and only the scale-down delay keeps the
second one: behavior.scaleDownDelay, lengthened for a bursty pool by up to ``burst_hold_max`` cold
starts. The burst makes this pool bursty, so the hold depends on the cold start the operator measured
(about 2 s with engines in this process, 10 to 30 s for pods on a real node).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

import yaml
from aiohttp.test_utils import TestClient
from kubernetes import client

from inferencefleet.api.durations import parse_duration
from inferencefleet.planner.tuning import DEFAULT_TUNING
from inferencefleet.signals.testing import prometheus

from ..integration.enginesim.conftest import Start
from ..integration.operator.conftest import (
    ROOT,
    TIMEOUT,
    ControlPlane,
    create,
    deployment,
    example,
    get_pool,
    has_condition,
    running_operator,
    wait_for,
)

SCENARIO = yaml.safe_load((ROOT / "e2e/scenarios/closed-loop.yaml").read_text())
POOL = SCENARIO["metadata"]["name"]
SCALE_DOWN_DELAY = 10.0
"""The scenario's behavior.scaleDownDelay, in seconds."""
IN_FLIGHT = 64
"""Closed-loop clients during the burst: 16 x max-num-seqs, so even two replicas leave about 56 waiting."""
PROMPT, OUTPUT = 100, 24
REQUEST = {"prompt": "hi", "max_tokens": OUTPUT, "stream": True, "sim": {"prompt_tokens": PROMPT}}
"""One closed-loop client's request: streamed, so that hanging up drops it at the engine's next token."""
SIGNALS_WINDOW = "5s"
"""Rate and quantile window of the operator's queries: five 1 s scrapes."""


def scrape_config(targets: Path) -> str:
    """Prometheus scraping every second the targets listed in ``targets`` (file service discovery)."""
    return f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
- job_name: engine-sim
  file_sd_configs: [{{files: ['{targets}'], refresh_interval: 1s}}]
"""


def write_targets(path: Path, pods: dict[str, tuple[str, str]]) -> None:
    """Prometheus file service discovery of {address: (namespace, pod)} of the pool, with the labels the rendered
    PodMonitor gives a pod and the operator's queries group by."""
    groups = [{"targets": [address], "labels": {"namespace": namespace, "inferencefleet_io_pool": POOL, "pod": pod}}
              for address, (namespace, pod) in pods.items()]
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps(groups))
    os.replace(staged, path)  # atomic: Prometheus never reads half a file


def engine_flags(args: list[str]) -> argparse.Namespace:
    """The engine-sim settings in a rendered container's arguments (the rest is vLLM's)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--max-num-seqs", type=int, required=True)
    parser.add_argument("--max-num-batched-tokens", type=int, required=True)
    parser.add_argument("--max-model-len", type=int, required=True)
    parser.add_argument("--time-scale", type=float, default=1.0)
    return parser.parse_known_args(args)[0]


class Pods:
    """One engine-sim per Ready pod of the pool, as the kubelet would run its container."""

    def __init__(self, api: client.ApiClient, namespace: str, start_engine: Start, targets: Path) -> None:
        self.api = api
        self.namespace = namespace
        self.start_engine = start_engine
        self.targets = targets
        self.engines: dict[str, TestClient] = {}
        self.in_flight: dict[TestClient, int] = {}
        self.write_targets()

    def write_targets(self) -> None:
        """The ready engines as the scrape targets of their pods."""
        write_targets(self.targets, {f"127.0.0.1:{engine.server.port}": (self.namespace, name)
                                     for name, engine in sorted(self.engines.items())})

    def ready_pods(self) -> dict[str, list[str]]:
        """{pod name: container args} of the pool's Ready pods that are not terminating."""
        pods = client.CoreV1Api(self.api).list_namespaced_pod(
            self.namespace, label_selector=f"inferencefleet.io/pool={POOL}").items
        return {p.metadata.name: p.spec.containers[0].args for p in pods if p.metadata.deletion_timestamp is None
                and any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))}

    async def reconcile(self) -> None:
        """Start an engine for each new Ready pod with its container's flags; drain and stop the gone ones."""
        ready = await asyncio.to_thread(self.ready_pods)
        for name, args in ready.items():
            if name not in self.engines:
                flags = engine_flags(args)
                engine = await self.start_engine(time_scale=flags.time_scale, max_num_seqs=flags.max_num_seqs,
                                                 max_num_batched_tokens=flags.max_num_batched_tokens,
                                                 max_model_len=flags.max_model_len)
                self.engines[name] = engine
                self.in_flight[engine] = 0
        for name in [n for n in self.engines if n not in ready]:  # a terminating pod: out of the Service, drained
            engine = self.engines.pop(name)
            while self.in_flight[engine]:
                await asyncio.sleep(0.05)
            await engine.close()
        self.write_targets()

    async def run(self) -> None:
        while True:
            await self.reconcile()
            await asyncio.sleep(0.2)

    async def client(self) -> None:
        """One closed-loop client until cancelled: a streamed request to the ready engine with the fewest in
        flight, then the next. Cancelled, it hangs up, and the engine drops the request at its next token."""
        while True:
            if not self.engines:
                await asyncio.sleep(0.1)
                continue
            engine = min(self.engines.values(), key=self.in_flight.__getitem__)
            self.in_flight[engine] += 1
            try:
                async with engine.post("/v1/completions", json=REQUEST) as response:
                    assert response.status == 200, await response.text()
                    async for _ in response.content:
                        pass
            finally:
                self.in_flight[engine] -= 1


class Load(Protocol):
    """Closed-loop clients of the pool's engines, started and stopped in groups."""

    async def start(self, clients: int) -> str:
        """Start ``clients`` clients; the name of the group."""

    async def stop(self, group: str) -> None:
        """Hang up the group's clients; fail if one had failed (a request not answered with 200)."""

    async def close(self) -> None:
        """Hang up every client still running, whatever happened."""


class ClientTasks:
    """A Load of client coroutines in this process."""

    def __init__(self, client: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.client = client
        self.groups: dict[str, list[asyncio.Task[None]]] = {}
        self.started = itertools.count()

    async def start(self, clients: int) -> str:
        name = f"group-{next(self.started)}"
        self.groups[name] = [asyncio.create_task(self.client()) for _ in range(clients)]
        return name

    async def stop(self, group: str) -> None:
        tasks = self.groups.pop(group)
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        failed = [o for o in outcomes if not isinstance(o, asyncio.CancelledError)]
        assert not failed, f"load clients failed: {failed!r}"

    async def close(self) -> None:
        tasks = [task for group in self.groups.values() for task in group]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def replicas_where(api: client.ApiClient, namespace: str, accept: Callable[[int], bool]) -> Callable[[], Any]:
    """A wait_for check: the Deployment once its spec.replicas is accepted."""
    return lambda: (found := deployment(api, namespace, POOL)) is not None and accept(found.spec.replicas) and found


def decision(api: client.ApiClient, namespace: str, action: str) -> Callable[[], dict[str, Any] | None]:
    """A wait_for check: the pool's latest status decision of ``action``."""
    def latest() -> dict[str, Any] | None:
        found = [d for d in get_pool(api, namespace, POOL).get("status", {}).get("decisions", [])
                 if d["action"] == action]
        return found[-1] if found else None
    return latest


async def closed_loop(api: client.ApiClient, namespace: str, load: Load, in_flight: int = IN_FLIGHT) -> None:
    """The scenario and its assertions, whoever runs the operator, the engines and the clients: ``in_flight``
    clients of ``load`` during the burst, one after it. Creates the quota and the pool in ``namespace``."""
    assert SCENARIO["spec"]["autoscaling"]["behavior"]["scaleDownDelay"] == f"{SCALE_DOWN_DELAY:g}s"
    scenario = {**SCENARIO, "metadata": {**SCENARIO["metadata"], "namespace": namespace}}
    burst = await load.start(in_flight - 1)
    steady = await load.start(1)
    try:
        await asyncio.to_thread(create, api, example("quota.yaml"))
        await asyncio.to_thread(create, api, scenario)

        scaled = await asyncio.to_thread(
            wait_for, replicas_where(api, namespace, lambda n: n > 1), "the operator to scale the Deployment above 1")
        up = await asyncio.to_thread(wait_for, decision(api, namespace, "ScaleUp"), "a ScaleUp decision in the status")
        assert (up["from"], up["to"], up["applied"]) == (1, scaled.spec.replicas, True)
        sizing = re.search(r"forecast ([\d.]+) req/s(?: \(no trend[^)]*\))? over the [\d.]+s cold start needs (\d+) replicas", up["reason"])
        assert sizing, f"the ScaleUp reason does not give the forecast and the replicas it needs: {up['reason']!r}"
        assert int(sizing[2]) >= up["to"]
        metrics = await asyncio.to_thread(
            wait_for, lambda: has_condition(api, namespace, POOL, "MetricsAvailable", "True"), "MetricsAvailable=True")
        assert metrics["reason"] == "SignalsFresh"
        await asyncio.to_thread(wait_for, lambda: get_pool(api, namespace, POOL)["status"].get("readyReplicas") == up["to"],
                                f"{up['to']} ready replicas in the pool's status")

        horizon = parse_duration(get_pool(api, namespace, POOL)["status"]["sizing"]["horizon"]) + 0.5  # to the second
        longest_hold = SCALE_DOWN_DELAY + DEFAULT_TUNING.scale.burst_hold_max * horizon
        ended = time.monotonic()  # until now most requests waited: a correct delay counts from later
        await load.stop(burst)
        down = await asyncio.to_thread(
            wait_for, replicas_where(api, namespace, lambda n: n < up["to"]), "the scale-down after the delay",
            longest_hold + TIMEOUT)
        held = time.monotonic() - ended
        assert held >= SCALE_DOWN_DELAY, (
            f"scaled down to {down.spec.replicas} {held:.1f}s after the burst ended, "
            f"inside the {SCALE_DOWN_DELAY:g}s scale-down delay")
        scaled_down = await asyncio.to_thread(wait_for, decision(api, namespace, "ScaleDown"), "a ScaleDown decision")
        assert (scaled_down["from"], scaled_down["to"]) == (up["to"], down.spec.replicas)
        window = re.search(r"at most (\d+) needed over the last (\d+)s \(the scale-down delay", scaled_down["reason"])
        assert window, f"the ScaleDown reason does not give the window it was sized on: {scaled_down['reason']!r}"
        assert int(window[1]) == down.spec.replicas and SCALE_DOWN_DELAY <= int(window[2]) <= longest_hold
        await load.stop(steady)
    finally:
        await load.close()


async def test_a_queue_scales_the_pool_up_and_the_scale_down_delay_holds_it_after_the_burst(
        control_plane: ControlPlane, namespace: str, start_engine: Start, tmp_path: Path,
        prometheus_binaries: None) -> None:
    api = control_plane.api()
    targets = tmp_path / "targets.json"
    cluster = Pods(api, namespace, start_engine, targets)
    with prometheus(tmp_path / "tsdb", scrape_config(targets)) as url, running_operator(
            control_plane, tmp_path, url, env={"INFERENCEFLEET_SIGNALS_WINDOW": SIGNALS_WINDOW}):
        controller = asyncio.create_task(cluster.run())
        try:
            await closed_loop(api, namespace, ClientTasks(cluster.client))
        finally:
            controller.cancel()
            await asyncio.gather(controller, return_exceptions=True)
