"""Pod templates: the engine container plus GPUs, placement, volumes, probes and graceful shutdown."""

from __future__ import annotations

import math
from typing import Any

from ..api.v1alpha1 import InferencePool
from . import labels
from .engine import Launch

CONTAINER = "engine"
PORT_NAME = "http"
CACHE_VOLUME = "model-cache"
CACHE_DIR = "/cache"
SHM_VOLUME = "dshm"
SHM_MIN_GI = 16
SHM_GI_PER_GPU = 4
STARTUP_PERIOD = 10
STARTUP_MARGIN = 1.5
"""The startup probe allows this multiple of autoscaling.coldStart before the kubelet restarts the pod."""
STARTUP_MIN_FAILURES = 3
"""Fewest startup probe failures allowed (Kubernetes' default): with one, a probe that lands before the
engine listens restarts it, however short its cold start."""
SHUTDOWN_RESERVE = 15
"""Seconds of terminationGracePeriodSeconds left for the engine to exit after the preStop drain."""


def shm_size(gpus_per_pod: int) -> str:
    """/dev/shm size: NCCL and the engine's worker queues grow with the GPUs in the pod."""
    return f"{max(SHM_MIN_GI, SHM_GI_PER_GPU * gpus_per_pod)}Gi"


def startup_failure_threshold(cold_start: float) -> int:
    """Probe failures allowed so that failureThreshold x period covers the expected cold start with margin."""
    return max(STARTUP_MIN_FAILURES, math.ceil(cold_start * STARTUP_MARGIN / STARTUP_PERIOD))


def drain_seconds(grace_period: int) -> int:
    """preStop sleep: the pod leaves the Service endpoints and in-flight streams keep running meanwhile."""
    return max(0, grace_period - SHUTDOWN_RESERVE)


def _cache_volume(pool: InferencePool) -> dict[str, Any]:
    cache = pool.spec.pod.cache
    if cache.kind == "pvc":
        return {"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": cache.claimName}}
    if cache.kind == "hostPath":
        return {"name": CACHE_VOLUME, "hostPath": {"path": cache.path, "type": "DirectoryOrCreate"}}
    empty_dir = {"sizeLimit": cache.sizeLimit} if cache.sizeLimit else {}
    return {"name": CACHE_VOLUME, "emptyDir": empty_dir}


def _env(pool: InferencePool, launch: Launch) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": "HF_HOME", "value": f"{CACHE_DIR}/huggingface"}]
    token = pool.spec.pod.hfTokenSecretRef
    if token is not None:
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": token.name, "key": token.key}}})
    env += launch.env
    env += [{"name": name, "value": value} for name, value in sorted(pool.spec.engine.env.items())]
    return env


def _affinity(pool: InferencePool) -> dict[str, Any] | None:
    product = pool.spec.topology.gpu.product
    if product is None:
        return None
    term = {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": [product]}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


def _probes(pool: InferencePool) -> dict[str, Any]:
    health = {"httpGet": {"path": "/health", "port": PORT_NAME}}
    return {
        "startupProbe": {
            **health,
            "periodSeconds": STARTUP_PERIOD,
            "timeoutSeconds": 5,
            "failureThreshold": startup_failure_threshold(pool.spec.autoscaling.coldStart),
        },
        "readinessProbe": {**health, "periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**health, "periodSeconds": 10, "timeoutSeconds": 10, "failureThreshold": 6},
    }


def container(pool: InferencePool, image: str, launch: Launch) -> dict[str, Any]:
    """The engine container for one pod role."""
    spec = pool.spec
    gpus = str(spec.topology.gpus_per_node)
    body: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": launch.command,
        "args": launch.args,
        "env": _env(pool, launch),
        "resources": {
            "requests": {"cpu": spec.pod.cpu, "memory": spec.pod.memory, spec.topology.gpu.resourceName: gpus},
            "limits": {"memory": spec.pod.memory, spec.topology.gpu.resourceName: gpus},
        },
        "volumeMounts": [
            {"name": SHM_VOLUME, "mountPath": "/dev/shm"},
            {"name": CACHE_VOLUME, "mountPath": CACHE_DIR},
            *launch.mounts,
        ],
    }
    if launch.serves_api:
        body["ports"] = [{"name": PORT_NAME, "containerPort": spec.engine.port, "protocol": "TCP"}]
        body.update(_probes(pool))
        body["lifecycle"] = {"preStop": {"sleep": {"seconds": drain_seconds(spec.pod.terminationGracePeriodSeconds)}}}
    return body


def pod_template(
    pool: InferencePool, image: str, launch: Launch, annotations: dict[str, str]
) -> dict[str, Any]:
    """A PodTemplateSpec for one role (Deployment pod, LWS leader or LWS worker)."""
    spec = pool.spec
    pod_labels = {**spec.pod.labels, **labels.object_labels(pool)}
    if launch.serves_api:
        pod_labels[labels.METRICS] = "true"
    pod_spec: dict[str, Any] = {
        "containers": [container(pool, image, launch)],
        "terminationGracePeriodSeconds": spec.pod.terminationGracePeriodSeconds,
        "tolerations": [t.to_wire() for t in spec.pod.tolerations],
        "volumes": [
            {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": shm_size(spec.topology.gpus_per_node)}},
            _cache_volume(pool),
            *launch.volumes,
        ],
    }
    affinity = _affinity(pool)
    if affinity is not None:
        pod_spec["affinity"] = affinity
    if spec.topology.gpu.nodeSelector:
        pod_spec["nodeSelector"] = dict(sorted(spec.topology.gpu.nodeSelector.items()))
    if spec.pod.serviceAccountName:
        pod_spec["serviceAccountName"] = spec.pod.serviceAccountName
    if spec.pod.priorityClassName:
        pod_spec["priorityClassName"] = spec.pod.priorityClassName
    metadata: dict[str, Any] = {"labels": pod_labels}
    all_annotations = {**spec.pod.annotations, **annotations}
    if all_annotations:
        metadata["annotations"] = dict(sorted(all_annotations.items()))
    return {"metadata": metadata, "spec": pod_spec}
