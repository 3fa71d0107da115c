"""A pool's workload (Deployment or LeaderWorkerSet): what to apply and what is observed (pure).

The rendered objects come from ``render.render_pool``; the workload additionally carries the
--max-num-seqs it was rendered with as an annotation, so the next tick knows what the pods run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..api.v1alpha1 import FleetQuota, InferencePool
from ..planner.memory import PoolMemory
from ..planner.types import PoolKey, PoolObservation
from ..render import labels
from ..render.workloads import render_pool
from ..settings import OperatorSettings

MAX_NUM_SEQS = "inferencefleet.io/max-num-seqs"
WORKLOAD_KINDS = ("Deployment", "LeaderWorkerSet")


@dataclass(frozen=True)
class Workload:
    """The observed state of a pool's Deployment / LeaderWorkerSet."""

    kind: str
    generation: int
    replicas: int
    """spec.replicas: what the operator (or /scale) last asked for."""
    status_replicas: int
    """status.replicas: replicas (groups) that exist."""
    ready_replicas: int
    max_num_seqs: int | None
    rolling_out: bool = False
    """The controller has not yet brought every replica to the current template."""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Workload:
        """Read a workload object as served by the API."""
        meta = body.get("metadata") or {}
        status = body.get("status") or {}
        seqs = (meta.get("annotations") or {}).get(MAX_NUM_SEQS)
        return cls(
            kind=str(body.get("kind")),
            generation=int(meta.get("generation") or 0),
            replicas=int((body.get("spec") or {}).get("replicas") or 0),
            status_replicas=int(status.get("replicas") or 0),
            ready_replicas=int(status.get("readyReplicas") or 0),
            max_num_seqs=int(seqs) if seqs and str(seqs).isdigit() else None,
            rolling_out=int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0)
            or int(status.get("updatedReplicas") or 0) < int((body.get("spec") or {}).get("replicas") or 0),
        )


def pool_key_of(body: Mapping[str, Any]) -> PoolKey | None:
    """The (namespace, pool) a workload belongs to, from its labels (None for foreign objects)."""
    meta = body.get("metadata") or {}
    object_labels = meta.get("labels") or {}
    if object_labels.get(labels.MANAGED_BY) != labels.MANAGER or labels.POOL not in object_labels:
        return None
    return (str(meta.get("namespace") or "default"), str(object_labels[labels.POOL]))


def newest(*candidates: Workload | None) -> Workload | None:
    """The candidate with the highest generation (index entries can lag the operator's own writes)."""
    present = [c for c in candidates if c is not None]
    return max(present, key=lambda w: w.generation) if present else None


def observation(workload: Workload | None, memory: PoolMemory, now: float) -> PoolObservation:
    """What the planner sees: spec replicas, ready ones, and since when each unready one has been starting.

    Pods are not watched, so a replica counts as starting from the first tick that saw it unready.
    """
    if workload is None:
        return PoolObservation(0, 0, None, ())
    ready = min(workload.ready_replicas, workload.replicas)
    starting = workload.replicas - ready
    since = tuple(sorted(memory.cold_start.starting_since)[:starting])
    since += (now,) * (starting - len(since))
    return PoolObservation(workload.replicas, ready, workload.max_num_seqs, since, workload.rolling_out)


def initial_replicas(pool: InferencePool, workload: Workload | None) -> int:
    """Replicas for an apply of the whole pool: keep what runs, else replicas.count, else replicas.min."""
    if workload is not None:
        return workload.replicas
    return pool.spec.replicas.count if pool.spec.replicas.count is not None else pool.spec.replicas.min


def render(pool: InferencePool, quota: FleetQuota | None, settings: OperatorSettings, replicas: int,
           max_num_seqs: int | None) -> list[dict[str, Any]]:
    """Every child object of ``pool``, with owner references and the workload's max-num-seqs annotation."""
    price = quota.spec.price(pool.spec.topology.gpu.type) if quota is not None else None
    uid = (pool.metadata.model_extra or {}).get("uid")
    seqs = pool.spec.batching.maxNumSeqs.max if max_num_seqs is None else max_num_seqs
    objects = render_pool(pool, replicas=replicas, max_num_seqs=seqs,
                          options=settings.render_options(dollars_per_gpu_hour=price, owner_uid=uid))
    for body in objects:
        if body["kind"] in WORKLOAD_KINDS:
            body["metadata"].setdefault("annotations", {})[MAX_NUM_SEQS] = str(seqs)
    return objects


def workload_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The Deployment or LeaderWorkerSet among rendered objects."""
    return next(o for o in objects if o["kind"] in WORKLOAD_KINDS)
