"""A scale-in removes the replicas with the least work in flight."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inferencefleet.planner.drain import MAX_COST, PodLoad, deletion_costs, drain_note, loads, removed_first


def test_each_ready_pod_costs_its_requests_in_flight_and_unknown_counts_as_idle() -> None:
    pods = loads(["a", "b", "c"], {"a": 12.4, "b": 0.0})
    assert deletion_costs(pods) == {"a": "12", "b": "0", "c": "0"}
    assert deletion_costs([PodLoad("huge", 1e30)]) == {"huge": str(MAX_COST)}


def test_the_least_busy_go_first_and_the_note_names_them() -> None:
    pods = loads(["busy", "idle", "half"], {"busy": 40, "idle": 0, "half": 7})
    assert [p.name for p in removed_first(pods, 2)] == ["idle", "half"]
    assert drain_note(pods, 1) == "removing the least busy: idle (0 in flight)"
    assert drain_note(loads(["new"], {}), 1) == "removing the least busy: new (unknown in flight)"
    assert drain_note(pods, 0) == ""


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.floats(0, 1e6), min_size=1), st.integers(0, 10))
def test_no_removed_pod_is_busier_than_a_kept_one(in_flight: dict[str, float], remove: int) -> None:
    pods = loads(sorted(in_flight), in_flight)
    removed = removed_first(pods, remove)
    kept = [p for p in pods if p not in removed]
    costs = deletion_costs(pods)
    assert len(removed) == min(remove, len(pods))
    assert all(int(costs[r.name]) <= int(costs[k.name]) for r in removed for k in kept)
