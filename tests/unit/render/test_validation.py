"""Rendered objects are valid Kubernetes: built-ins with kubernetes-validate --strict, custom
resources with jsonschema against the vendored LeaderWorkerSet / PodMonitor schemas (made strict)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.manifests import load_pools
from inferencefleet.render.workloads import render_pool

K8S_VERSION = kubernetes_validate.latest_version()
CUSTOM = {"leaderworkerset.x-k8s.io/v1/LeaderWorkerSet", "monitoring.coreos.com/v1/PodMonitor"}

VARIANTS: dict[str, dict[str, Any]] = {
    "trtllm-multinode-eagle": {
        "model": {"architecture": "moe"},
        "engine": {"kind": "trtllm", "speculative": {"method": "eagle", "model": "org/eagle-head"}},
        "topology": {"tensorParallel": 8, "pipelineParallel": 2, "expertParallel": True, "nodesPerReplica": 2},
    },
    "vllm-pvc-weights-draft": {
        "model": {"uri": "pvc://weights/llama/8b", "servedName": "llama"},
        "engine": {"speculative": {"method": "draft", "model": "org/tiny"}, "extraArgs": ["--seed", "7"]},
        "topology": {"gpu": {"nodeSelector": {"pool": "gpu"}}},
        "pod": {"cache": {"kind": "pvc", "claimName": "cache"}, "serviceAccountName": "engine",
                "priorityClassName": "inference", "labels": {"team": "a"}, "annotations": {"note": "x"}},
    },
    "trtllm-dp-moe": {
        "model": {"architecture": "moe", "quantization": "fp8"},
        "engine": {"kind": "trtllm", "speculative": {"method": "ngram", "promptLookupMax": 3}},
        "topology": {"tensorParallel": 2, "dataParallel": 2, "expertParallel": True},
    },
}


def validate_object(obj: dict[str, Any], crd_schemas: dict[str, Any]) -> None:
    """Raise if ``obj`` is not valid for its kind."""
    key = f"{obj['apiVersion']}/{obj['kind']}"
    if key not in CUSTOM:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        return
    jsonschema.validate(obj, crd_schemas[key])
    if obj["kind"] == "LeaderWorkerSet":
        group = obj["spec"]["leaderWorkerTemplate"]
        for role in ("leaderTemplate", "workerTemplate"):
            pod_template = {"apiVersion": "v1", "kind": "PodTemplate",
                            "metadata": {"name": f"{obj['metadata']['name']}-{role}"}, "template": group[role]}
            kubernetes_validate.validate(pod_template, K8S_VERSION, strict=True)


def rendered_pools(make_pool: Callable[..., InferencePool], examples: list[Path]) -> list[InferencePool]:
    return load_pools([str(p) for p in examples]) + [make_pool(spec=s) for s in VARIANTS.values()]


def test_every_rendered_object_is_valid(
    make_pool: Callable[..., InferencePool], examples: list[Path], crd_schemas: dict[str, Any]
) -> None:
    kinds = set()
    for pool in rendered_pools(make_pool, examples):
        for obj in render_pool(pool, replicas=3, max_num_seqs=64):
            validate_object(obj, crd_schemas)
            kinds.add(obj["kind"])
    assert kinds == {"ConfigMap", "Deployment", "LeaderWorkerSet", "Service", "PodDisruptionBudget", "PodMonitor"}


def _mutations() -> list[tuple[str, str, Callable[[dict[str, Any]], None]]]:
    def container(obj: dict[str, Any]) -> dict[str, Any]:
        return obj["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]

    return [
        ("Deployment", "unknown container field", lambda o: container(o).update(bogus=1)),
        ("Deployment", "probe port of the wrong type", lambda o: container(o)["readinessProbe"]["httpGet"].update(port=[1])),
        ("LeaderWorkerSet", "unknown group field", lambda o: o["spec"]["leaderWorkerTemplate"].update(sise=2)),
        ("LeaderWorkerSet", "restart policy outside the enum",
         lambda o: o["spec"]["leaderWorkerTemplate"].update(restartPolicy="Always")),
        ("LeaderWorkerSet", "unknown pod field inside the leader template",
         lambda o: o["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"].update(hostnetwork=True)),
        ("PodMonitor", "relabel action outside the enum",
         lambda o: o["spec"]["podMetricsEndpoints"][0]["relabelings"][0].update(action="rewrite")),
        ("PodMonitor", "interval that is not a Prometheus duration",
         lambda o: o["spec"]["podMetricsEndpoints"][0].update(interval="5 seconds")),
        ("PodMonitor", "selector missing", lambda o: o["spec"].pop("selector")),
    ]


@pytest.mark.parametrize(("kind", "what", "mutate"), _mutations(), ids=[m[1] for m in _mutations()])
def test_validation_catches_broken_objects(
    kind: str, what: str, mutate: Callable[[dict[str, Any]], None],
    make_pool: Callable[..., InferencePool], examples: list[Path], crd_schemas: dict[str, Any],
) -> None:
    objects = [o for p in rendered_pools(make_pool, examples) for o in render_pool(p, replicas=1)]
    obj = copy.deepcopy(next(o for o in objects if o["kind"] == kind))
    validate_object(obj, crd_schemas)
    mutate(obj)
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        validate_object(obj, crd_schemas)
