"""Which replicas a scale-in removes: the ones with the least work in flight.

Among pods that are equally ready, a ReplicaSet removes the ones with the lowest
``controller.kubernetes.io/pod-deletion-cost`` first. Before it lowers a Deployment's replicas the
operator marks every ready pod with its requests in flight (running plus waiting, from the engines'
gauges), so the idlest pods go and the busiest keep their requests. Pods that are not ready are
removed before any ready one whatever their cost. A multi-node pool (LeaderWorkerSet) always removes
its highest-numbered groups, each group whole: there is nothing to choose and nothing is marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
MAX_COST = 2**31 - 1
"""The annotation is an int32."""


@dataclass(frozen=True)
class PodLoad:
    """One ready pod of a pool and the requests it has in flight (None: its engine was not scraped)."""

    name: str
    in_flight: float | None


def deletion_costs(pods: Sequence[PodLoad]) -> dict[str, str]:
    """The deletion-cost annotation value of each pod: its requests in flight (unknown counts as idle)."""
    return {pod.name: str(min(MAX_COST, round(pod.in_flight or 0.0))) for pod in pods}


def removed_first(pods: Sequence[PodLoad], remove: int) -> list[PodLoad]:
    """The ``remove`` pods the ReplicaSet takes first under those costs (ties: by name, as a reader expects)."""
    costs = deletion_costs(pods)
    return sorted(pods, key=lambda pod: (int(costs[pod.name]), pod.name))[:max(0, remove)]


def loads(ready: Sequence[str], in_flight: Mapping[str, float]) -> list[PodLoad]:
    """PodLoad of each ready pod from the per-pod in-flight gauges."""
    return [PodLoad(name, in_flight.get(name)) for name in ready]


def drain_note(pods: Sequence[PodLoad], remove: int) -> str:
    """A readable note of which pods go and why, for the scale-in's Event and decision."""
    chosen = removed_first(pods, remove)
    if not chosen:
        return ""
    listed = ", ".join(f"{p.name} ({'unknown' if p.in_flight is None else f'{p.in_flight:g}'} in flight)"
                       for p in chosen)
    return f"removing the least busy: {listed}"
