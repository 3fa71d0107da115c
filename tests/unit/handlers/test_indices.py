"""The kopf index handlers read kopf bodies and keep no part of them; spec handlers run a bounded number at once."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from inferencefleet.handlers import main
from inferencefleet.handlers.children import Child
from inferencefleet.handlers.runtime import SPEC_CONCURRENCY, Runtime
from inferencefleet.handlers.workloads import Workload
from inferencefleet.settings import OperatorSettings

LABELS = {"app.kubernetes.io/managed-by": "inferencefleet", "inferencefleet.io/pool": "p"}


def deployment() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "generation": 3, "labels": LABELS,
                         "annotations": {"inferencefleet.io/max-num-seqs": "64"},
                         "managedFields": [{"manager": "inferencefleet"}]},
            "spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 1, "observedGeneration": 3,
                                               "updatedReplicas": 2}}


def test_workload_and_child_entries_are_read_from_the_kopf_body() -> None:
    body = kopf.Body(deployment())
    workloads = asyncio.run(main.deployment_index(body=body))
    assert workloads == {("ns", "p"): Workload("Deployment", 3, 2, 2, 1, 64)}
    children = asyncio.run(main.child_index(body=body))
    assert children is not None
    child: Child = children[("ns", "p")]
    assert (child.ref.api_version, child.ref.kind, child.ref.name, child.ref.namespace, child.ref.uid,
            child.version) == ("apps/v1", "Deployment", "p", "ns", "u", 3)


def test_foreign_objects_have_no_entry() -> None:
    raw = deployment()
    raw["metadata"]["labels"] = {}
    assert asyncio.run(main.deployment_index(body=kopf.Body(raw))) is None
    assert asyncio.run(main.child_index(body=kopf.Body(raw))) is None


def test_the_pool_entry_is_a_plain_copy_without_managed_fields_or_the_last_handled_spec() -> None:
    raw = {"apiVersion": "inferencefleet.io/v1alpha1", "kind": "InferencePool",
           "metadata": {"name": "p", "namespace": "ns", "managedFields": [{"manager": "kubectl"}],
                        "annotations": {main.LAST_HANDLED: "{}", "keep": "me"}},
           "spec": {"replicas": {"min": 1}}}
    entry = asyncio.run(main.pool_index(body=kopf.Body(raw)))[("ns", "p")]
    assert entry == {"apiVersion": "inferencefleet.io/v1alpha1", "kind": "InferencePool",
                     "metadata": {"name": "p", "namespace": "ns", "annotations": {"keep": "me"}},
                     "spec": {"replicas": {"min": 1}}}
    assert type(entry["spec"]) is dict and raw["metadata"]["annotations"][main.LAST_HANDLED] == "{}"


def test_spec_handlers_beyond_the_limit_wait_before_doing_anything(monkeypatch: Any) -> None:
    running = peak = 0

    async def reconcile_spec(*_: Any) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    monkeypatch.setattr(main.spec, "reconcile_spec", reconcile_spec)

    async def start_many() -> None:
        memo = kopf.Memo(runtime=Runtime(OperatorSettings(), kube=None, source=None))  # type: ignore[arg-type]
        indices: dict[str, Any] = {name: {} for name in ("quota_index", "deployment_index", "lws_index")}
        indices.update({f"{plural}_children": {} for _, _, plural in main.CHILD_RESOURCES})
        await asyncio.gather(*(main.reconcile(body=kopf.Body({"metadata": {"name": f"p{i}", "namespace": "ns"}}),
                                              memo=memo, **indices) for i in range(3 * SPEC_CONCURRENCY)))

    asyncio.run(start_many())
    assert peak == SPEC_CONCURRENCY
