"""render_pool: an InferencePool -> the ordered list of Kubernetes objects the operator applies.

Order: engine ConfigMap (TensorRT-LLM only), the workload (Deployment for one-node replicas,
LeaderWorkerSet for multi-node groups), Service, PodDisruptionBudget, PodMonitor.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from ..api.v1alpha1 import API_VERSION, InferencePool
from ..planner.batching import ROLLOUT_SURGE
from . import labels
from .cost import cost_annotations
from .engine import Engine
from .feasibility import check_pool, check_replicas
from .monitoring import pod_monitor_spec
from .options import RenderOptions
from .pod import PORT_NAME, pod_template
from .trtllm import config_name

LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
PODMONITOR_API_VERSION = "monitoring.coreos.com/v1"


def _metadata(pool: InferencePool, name: str, options: RenderOptions) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if pool.metadata.namespace:
        metadata["namespace"] = pool.metadata.namespace
    metadata["labels"] = labels.object_labels(pool)
    uid = options.owner_uid or (pool.metadata.model_extra or {}).get("uid")
    if uid:
        metadata["ownerReferences"] = [
            {
                "apiVersion": API_VERSION,
                "kind": "InferencePool",
                "name": pool.metadata.name,
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return metadata


def _config_hash(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name, text in sorted(files.items()):
        digest.update(f"{name}\0{text}\0".encode())
    return digest.hexdigest()[:16]


def _deployment(pool: InferencePool, replicas: int, template: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    cold_start = pool.spec.autoscaling.coldStart
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels.selector(pool)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": ROLLOUT_SURGE, "maxUnavailable": 0}},
            "progressDeadlineSeconds": max(600, math.ceil(3 * cold_start)),
            "revisionHistoryLimit": 3,
            "template": template,
        },
    }


def _leader_worker_set(
    pool: InferencePool, replicas: int, leader: dict[str, Any], worker: dict[str, Any], meta: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": LWS_API_VERSION,
        "kind": "LeaderWorkerSet",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "startupPolicy": "LeaderCreated",
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": {"maxUnavailable": 0, "maxSurge": ROLLOUT_SURGE},
            },
            "leaderWorkerTemplate": {
                "size": pool.spec.topology.nodesPerReplica,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": leader,
                "workerTemplate": worker,
            },
        },
    }


def workload_kind(pool: InferencePool) -> str:
    """Deployment for one node per replica, LeaderWorkerSet for multi-node groups."""
    return "Deployment" if pool.spec.topology.nodesPerReplica == 1 else "LeaderWorkerSet"


def _workload(
    pool: InferencePool, engine: Engine, replicas: int, max_num_seqs: int, options: RenderOptions,
    config_files: dict[str, str],
) -> dict[str, Any]:
    image = options.image_for(pool)
    annotations = {labels.CONFIG_HASH: _config_hash(config_files)} if config_files else {}
    meta = _metadata(pool, pool.metadata.name, options)
    meta["annotations"] = cost_annotations(pool, replicas, options.dollars_per_gpu_hour)
    if workload_kind(pool) == "Deployment":
        launch = engine.launch(pool, max_num_seqs, "single", options)
        return _deployment(pool, replicas, pod_template(pool, image, launch, annotations), meta)
    leader = pod_template(pool, image, engine.launch(pool, max_num_seqs, "leader", options), annotations)
    worker = pod_template(pool, image, engine.launch(pool, max_num_seqs, "worker", options), annotations)
    return _leader_worker_set(pool, replicas, leader, worker, meta)


def render_pool(
    pool: InferencePool,
    *,
    replicas: int,
    max_num_seqs: int | None = None,
    options: RenderOptions | None = None,
) -> list[dict[str, Any]]:
    """The objects for ``pool`` at ``replicas`` (LWS groups when multi-node), ordered and deterministic.

    ``max_num_seqs`` defaults to batching.maxNumSeqs.max. Raises RenderError for infeasible specs.
    """
    options = options or RenderOptions()
    seqs = pool.spec.batching.maxNumSeqs.max if max_num_seqs is None else max_num_seqs
    check_replicas(replicas, seqs)
    engine = check_pool(pool, options)
    name = pool.metadata.name
    config_files = engine.config_files(pool)
    objects: list[dict[str, Any]] = []
    if config_files:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _metadata(pool, config_name(pool), options),
                "data": config_files,
            }
        )
    objects.append(_workload(pool, engine, replicas, seqs, options, config_files))
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(pool, name, options),
            "spec": {
                "type": "ClusterIP",
                "selector": labels.metrics_selector(pool),
                "ports": [
                    {
                        "name": PORT_NAME,
                        "port": pool.spec.engine.port,
                        "targetPort": PORT_NAME,
                        "protocol": "TCP",
                        "appProtocol": "http",
                    }
                ],
            },
        }
    )
    objects.append(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _metadata(pool, name, options),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels.selector(pool)}},
        }
    )
    objects.append(
        {
            "apiVersion": PODMONITOR_API_VERSION,
            "kind": "PodMonitor",
            "metadata": _metadata(pool, name, options),
            "spec": pod_monitor_spec(pool, engine, options.scrape_interval),
        }
    )
    return objects
