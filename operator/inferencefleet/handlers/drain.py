"""Before a Deployment scales in: mark its ready pods with their work in flight (``planner.drain``)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..api.v1alpha1 import InferencePool
from ..kube.client import KubeError
from ..kube.resources import ObjectRef
from ..planner.drain import DELETION_COST, deletion_costs, drain_note, loads
from ..planner.types import PoolKey
from ..render import labels
from ..signals.collect import QueryFailed
from .runtime import Runtime


def _ready(pod: dict[str, Any]) -> bool:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    return not meta.get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())


async def prepare_scale_in(runtime: Runtime, pool: InferencePool, key: PoolKey, keep: int, now: float) -> str:
    """Mark the pool's ready pods so that its ReplicaSet removes the least busy first; a note for the Event.

    A failure to read the pods or their load, or to mark them, goes into the note and the scale-in goes on:
    the pods then go in the ReplicaSet's default order, which is no worse than not marking them.
    """
    namespace, name = key
    selector = ",".join(f"{k}={v}" for k, v in labels.selector(pool).items())
    try:
        pods = [p for p in await runtime.kube.list_pods(namespace, selector) if _ready(p)]
    except KubeError as error:
        return f"pods not marked for removal: {error}"
    in_flight: dict[str, float] = {}
    problems = []
    if runtime.source is not None:
        answer = await runtime.source.in_flight(namespace, name, now)
        if isinstance(answer, QueryFailed):
            problems.append(f"requests in flight unknown ({answer.reason})")
        else:
            in_flight = answer
    pod_loads = loads([str(p["metadata"]["name"]) for p in pods], in_flight)
    current = {str(p["metadata"]["name"]): (p["metadata"].get("annotations") or {}).get(DELETION_COST) for p in pods}
    marks = {pod: cost for pod, cost in deletion_costs(pod_loads).items() if current[pod] != cost}
    results = await asyncio.gather(*(runtime.kube.annotate(ObjectRef("v1", "Pod", pod, namespace),
                                                           {DELETION_COST: cost}) for pod, cost in marks.items()),
                                   return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    unexpected = next((r for r in failed if not isinstance(r, KubeError)), None)
    if unexpected is not None:
        raise unexpected
    if failed:
        problems.append(f"{len(failed)} of {len(marks)} pods not marked: {failed[0]}")
    return "; ".join(filter(None, (drain_note(pod_loads, len(pod_loads) - keep), *problems)))
