"""Pod details, labels, selectors, ownership, cost and monitoring of the rendered objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferencefleet.api.durations import format_duration
from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.render.options import RenderOptions
from inferencefleet.render.workloads import render_pool

POOL_LABELS = {
    "app.kubernetes.io/name": "inferencefleet-engine",
    "app.kubernetes.io/instance": "pool",
    "app.kubernetes.io/managed-by": "inferencefleet",
    "inferencefleet.io/pool": "pool",
    "inferencefleet.io/tier": "free",
}
MULTI_NODE = {"topology": {"tensorParallel": 16, "nodesPerReplica": 2}}


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind)


def pod_templates(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for obj in objects:
        if obj["kind"] == "Deployment":
            return [obj["spec"]["template"]]
        if obj["kind"] == "LeaderWorkerSet":
            group = obj["spec"]["leaderWorkerTemplate"]
            return [group["leaderTemplate"], group["workerTemplate"]]
    raise AssertionError("no workload")


def matches(selector: dict[str, str], pod_labels: dict[str, str]) -> bool:
    return all(pod_labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("spec", [{}, MULTI_NODE, {"engine": {"kind": "trtllm"}}], ids=["vllm", "lws", "trtllm"])
def test_labels_everywhere_and_selectors_pick_the_metrics_pods(
    spec: dict[str, Any], make_pool: Callable[..., InferencePool]
) -> None:
    objects = render_pool(make_pool(spec=spec), replicas=2)
    for obj in objects:
        assert obj["metadata"]["labels"] == POOL_LABELS
    templates = pod_templates(objects)
    for template in templates:
        assert POOL_LABELS.items() <= template["metadata"]["labels"].items()
    serving = [t for t in templates if "ports" in t["spec"]["containers"][0]]
    assert serving == templates[:1]  # the Deployment pod, or only the LWS leader
    service = by_kind(objects, "Service")["spec"]["selector"]
    monitor = by_kind(objects, "PodMonitor")["spec"]["selector"]["matchLabels"]
    budget = by_kind(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
    for template in templates:
        pod_labels = template["metadata"]["labels"]
        assert matches(service, pod_labels) == (template in serving) == matches(monitor, pod_labels)
        assert pod_labels.get("inferencefleet.io/metrics") == ("true" if template in serving else None)
        assert matches(budget, pod_labels)
    workload = next(o for o in objects if o["kind"] in ("Deployment", "LeaderWorkerSet"))
    assert workload["spec"]["replicas"] == 2
    if workload["kind"] == "Deployment":
        assert matches(workload["spec"]["selector"]["matchLabels"], templates[0]["metadata"]["labels"])


def test_pod_monitor_produces_the_series_labels_the_signals_layer_queries(
    make_pool: Callable[..., InferencePool],
) -> None:
    endpoint = by_kind(render_pool(make_pool(), replicas=1), "PodMonitor")["spec"]["podMetricsEndpoints"][0]
    targets = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert targets == {
        "namespace": ["__meta_kubernetes_namespace"],
        "inferencefleet_io_pool": ["__meta_kubernetes_pod_label_inferencefleet_io_pool"],
        "inferencefleet_io_tier": ["__meta_kubernetes_pod_label_inferencefleet_io_tier"],
        "pod": ["__meta_kubernetes_pod_name"],
    }
    assert endpoint["interval"] == "5s" and endpoint["path"] == "/metrics" and endpoint["port"] == "http"
    [fix] = endpoint["metricRelabelings"]
    assert (fix["sourceLabels"], fix["regex"], fix["targetLabel"], fix["replacement"]) == (
        ["__name__"], "vllm_(.+)", "__name__", "vllm:$1")
    custom = render_pool(make_pool(), replicas=1, options=RenderOptions(scrape_interval="15s"))
    assert by_kind(custom, "PodMonitor")["spec"]["podMetricsEndpoints"][0]["interval"] == "15s"


@given(cold_start=st.floats(min_value=1, max_value=3600))
def test_startup_probe_covers_the_cold_start(cold_start: float) -> None:
    pool = InferencePool.model_validate({
        "metadata": {"name": "p"},
        "spec": {"model": {"name": "m"}, "tier": "t", "autoscaling": {"coldStart": format_duration(round(cold_start))}},
    })
    probe = pod_templates(render_pool(pool, replicas=1))[0]["spec"]["containers"][0]["startupProbe"]
    assert probe["failureThreshold"] * probe["periodSeconds"] >= pool.spec.autoscaling.coldStart
    assert probe["failureThreshold"] >= 3  # one probe before the engine listens is never a restart
    assert probe["httpGet"]["path"] == "/health"


def test_pod_details(make_pool: Callable[..., InferencePool]) -> None:
    pool = make_pool(spec={
        "topology": {"tensorParallel": 8, "gpu": {"product": "NVIDIA-H100-80GB-HBM3", "resourceName": "example.com/gpu",
                                                  "nodeSelector": {"zone": "a"}}},
        "pod": {"hfTokenSecretRef": {"name": "hf", "key": "tok"}, "terminationGracePeriodSeconds": 200,
                "cache": {"kind": "emptyDir", "sizeLimit": "300Gi"},
                "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    })
    pod = pod_templates(render_pool(pool, replicas=1))[0]["spec"]
    engine = pod["containers"][0]
    assert engine["resources"]["limits"]["example.com/gpu"] == "8"
    assert engine["resources"]["requests"]["example.com/gpu"] == "8"
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"] == [
        {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-H100-80GB-HBM3"]}]
    assert pod["nodeSelector"] == {"zone": "a"}
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    token = next(e for e in engine["env"] if e["name"] == "HF_TOKEN")
    assert token["valueFrom"] == {"secretKeyRef": {"name": "hf", "key": "tok"}}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in engine["volumeMounts"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert volumes[mounts["/cache"]]["emptyDir"] == {"sizeLimit": "300Gi"}
    assert pod["terminationGracePeriodSeconds"] == 200
    assert 0 < engine["lifecycle"]["preStop"]["sleep"]["seconds"] < 200
    assert engine["readinessProbe"]["httpGet"]["path"] == "/health"
    assert "livenessProbe" in engine


def test_shm_grows_with_tensor_parallel(make_pool: Callable[..., InferencePool]) -> None:
    def shm_gi(tp: int) -> int:
        volumes = pod_templates(render_pool(make_pool(spec={"topology": {"tensorParallel": tp}}), replicas=1))[0]
        size = next(v for v in volumes["spec"]["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory")
        return int(size["emptyDir"]["sizeLimit"].removesuffix("Gi"))

    assert shm_gi(1) >= 16
    assert shm_gi(1) <= shm_gi(4) < shm_gi(8)


@pytest.mark.parametrize(("cache", "expected"), [
    ({"kind": "pvc", "claimName": "models"}, {"persistentVolumeClaim": {"claimName": "models"}}),
    ({"kind": "hostPath", "path": "/mnt/m"}, {"hostPath": {"path": "/mnt/m", "type": "DirectoryOrCreate"}}),
    ({"kind": "emptyDir"}, {"emptyDir": {}}),
])
def test_cache_volume_kinds(cache: dict[str, Any], expected: dict[str, Any], make_pool: Callable[..., InferencePool]) -> None:
    pod = pod_templates(render_pool(make_pool(spec={"pod": {"cache": cache}}), replicas=1))[0]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/cache")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert {k: v for k, v in volume.items() if k != "name"} == expected


def test_pvc_weights_are_mounted_read_only(make_pool: Callable[..., InferencePool]) -> None:
    pool = make_pool(spec={"model": {"uri": "pvc://weights/llama/8b"}})
    pod = pod_templates(render_pool(pool, replicas=1))[0]["spec"]
    engine = pod["containers"][0]
    mount = next(m for m in engine["volumeMounts"] if engine["args"][0].startswith(m["mountPath"] + "/"))
    assert engine["args"][0] == mount["mountPath"] + "/llama/8b" and mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"] == {"claimName": "weights", "readOnly": True}


def test_owner_references_only_with_a_uid(make_pool: Callable[..., InferencePool]) -> None:
    assert all("ownerReferences" not in o["metadata"] for o in render_pool(make_pool(), replicas=1))
    for objects in (render_pool(make_pool(), replicas=1, options=RenderOptions(owner_uid="u-1")),
                    render_pool(make_pool(metadata={"uid": "u-1"}), replicas=1)):
        for obj in objects:
            [ref] = obj["metadata"]["ownerReferences"]
            assert ref == {"apiVersion": "inferencefleet.io/v1alpha1", "kind": "InferencePool", "name": "pool",
                           "uid": "u-1", "controller": True, "blockOwnerDeletion": True}


def test_cost_annotations(make_pool: Callable[..., InferencePool]) -> None:
    pool = make_pool(spec={"topology": {"tensorParallel": 4}})
    deployment = by_kind(render_pool(pool, replicas=3, options=RenderOptions(dollars_per_gpu_hour=2.5)), "Deployment")
    assert deployment["metadata"]["annotations"] == {
        "inferencefleet.io/gpus-per-replica": "4",
        "inferencefleet.io/dollars-per-hour-per-replica": "10.00",
        "inferencefleet.io/dollars-per-hour": "30.00",
    }


def test_default_image_per_engine_and_override(make_pool: Callable[..., InferencePool]) -> None:
    options = RenderOptions(images={"vllm": "registry/vllm:1", "trtllm": "registry/trt:2"})
    for spec, image in (({}, "registry/vllm:1"), ({"engine": {"kind": "trtllm"}}, "registry/trt:2"),
                        ({"engine": {"image": "mine:3"}}, "mine:3")):
        pod = pod_templates(render_pool(make_pool(spec=spec), replicas=1, options=options))[0]
        assert pod["spec"]["containers"][0]["image"] == image
