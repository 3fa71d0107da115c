"""The operator's status cache never overrides what the cluster holds once the watch caught up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inferencefleet.handlers.runtime import Runtime, pool_ref
from inferencefleet.handlers.status import decisions_of
from inferencefleet.planner.memory import FleetState, PoolMemory
from inferencefleet.settings import OperatorSettings


def body(version: str, status: dict[str, Any] | None) -> dict[str, Any]:
    return {"kind": "InferencePool", "metadata": {"name": "p", "namespace": "ns", "uid": "u",
                                                  "resourceVersion": version}, "status": status}


def runtime() -> Runtime:
    return Runtime(OperatorSettings(), kube=None, source=None)  # type: ignore[arg-type]


def test_our_write_wins_until_the_watch_delivers_it_then_the_cluster_wins() -> None:
    rt = runtime()
    ref = pool_ref(body("10", None))
    rt.written[ref] = ("12", {"conditions": ["ours"]})
    assert rt.status_of(ref, body("11", {"conditions": ["old"]})) == {"conditions": ["ours"]}
    # Someone cleared the conditions after our write (kubectl patch --subresource=status): theirs stands.
    assert rt.status_of(ref, body("13", {"conditions": []})) == {"conditions": []}
    assert ref not in rt.written
    assert rt.status_of(ref, body("13", {"conditions": []})) == {"conditions": []}


def test_caches_of_deleted_pools_are_dropped() -> None:
    rt = runtime()
    rt.state = FleetState({("ns", "gone"): PoolMemory(), ("ns", "kept"): PoolMemory()})
    for name in ("gone", "kept"):
        rt.locks[("ns", name)]
        rt.written[pool_ref({**body("1", None), "metadata": {"name": name, "namespace": "ns"}})] = ("1", {})
    rt.forget({("ns", "kept")})
    assert set(rt.locks) == {("ns", "kept")}
    assert {(r.namespace, r.name) for r in rt.written} == {("ns", "kept")}
    assert set(rt.state.pools) == {("ns", "kept")}


def test_malformed_decisions_in_status_are_dropped_not_fatal() -> None:
    good = {"time": "2026-12-04T00:00:00Z", "action": "ScaleUp", "from": 1, "to": 2, "reason": "r", "applied": True}
    assert decisions_of({"decisions": [good, {"action": 5}, "junk", None]}) == [good]


def _decision(action: str, from_: int, to: int, applied: bool = True) -> Any:
    from inferencefleet.planner.records import DecisionRecord
    from inferencefleet.planner.types import PoolDecision, SizingTrace

    return PoolDecision(key=("ns", "p"), mode="Managed", tier="free", current_replicas=from_, desired_replicas=to,
                        applied=applied, max_num_seqs=64, recommended_max_num_seqs=64, rollout_max_num_seqs=False,
                        quota_cap=None, quota_reason="", gpus=to, dollars_per_hour=0.0,
                        sizing=SizingTrace(demand=None, arrivals=None, forecast=None, backlog=None, horizon=60.0,
                                           trend_warming=False, burstiness=1.0, prompt_tokens=1024.0,
                                           output_tokens=256.0, step_multiplier=1.0, prefill_multiplier=1.0,
                                           batch=64, slo_rate=1.0, target_utilization=1.0, headroom=1.0,
                                           load_test_factor=None, climb_margin=1.0, replica_rate=1.0, needed=None,
                                           wanted=to, quota_cap=None, desired=to),
                        records=(DecisionRecord(action, from_, to, f"{action} {from_}->{to}"),),
                        conditions=())


def test_up_down_up_down_up_keeps_every_decision_and_a_standing_recommendation_once() -> None:
    from inferencefleet.handlers.status import new_decisions

    kept: list[dict[str, Any]] = []
    for i, (action, a, b) in enumerate([("ScaleUp", 1, 2), ("ScaleDown", 2, 1)] * 2 + [("ScaleUp", 1, 2)]):
        kept = new_decisions(kept, _decision(action, a, b), False, f"2026-12-04T00:00:0{i}Z")
    assert [(d["action"], d["from"], d["to"]) for d in kept] == [
        ("ScaleUp", 1, 2), ("ScaleDown", 2, 1), ("ScaleUp", 1, 2), ("ScaleDown", 2, 1), ("ScaleUp", 1, 2)]
    shadow: list[dict[str, Any]] = []
    for i in range(3):
        shadow = new_decisions(shadow, _decision("ScaleUp", 1, 3, applied=False), False, f"2026-12-04T00:00:0{i}Z")
    assert len(shadow) == 1


def test_a_pool_is_parsed_again_only_when_its_generation_or_labels_change() -> None:
    import copy

    from inferencefleet.handlers.runtime import parse_pool
    from inferencefleet.manifests import load_pools

    [example] = load_pools([str(Path(__file__).parents[3] / "policies/examples/llama3-8b-free.yaml")])
    served = {"metadata": {"name": "cached", "namespace": "ns", "uid": "u-1", "generation": 1},
              "spec": example.model_dump(mode="json", by_alias=True, exclude_none=True)["spec"]}
    first, _ = parse_pool(served)
    assert parse_pool(copy.deepcopy(served))[0] is first  # same generation: not validated again
    changed = copy.deepcopy(served)
    changed["metadata"]["generation"] = 2
    changed["spec"]["replicas"]["max"] = 3
    assert parse_pool(changed)[0].spec.replicas.max == 3
    broken = copy.deepcopy(changed)
    broken["metadata"]["generation"] = 3
    broken["spec"]["replicas"]["max"] = -1
    model, problems = parse_pool(broken)
    assert model is None and "spec.replicas.max" in problems
