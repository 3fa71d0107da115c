"""set_condition: the transition time moves only when the status flips; no change, no write."""

from __future__ import annotations

from inferencefleet.api.conditions import MESSAGE_LIMIT, READY, SLO_MET, set_condition

T0, T1, T2 = "2025-01-01T00:00:00Z", "2025-01-01T00:00:05Z", "2025-01-01T00:00:10Z"


def test_new_condition_is_added_with_now_as_transition_time():
    conditions, changed = set_condition([], READY, "False", "Starting", "no replica ready", T0, 1)
    assert changed
    assert [(c.type, c.status, c.lastTransitionTime, c.observedGeneration) for c in conditions] == [
        (READY, "False", T0, 1)
    ]


def test_same_verdict_again_changes_nothing():
    first, _ = set_condition([], READY, "True", "AllReady", "2/2 ready", T0, 1)
    again, changed = set_condition(first, READY, "True", "AllReady", "2/2 ready", T1, 1)
    assert not changed
    assert again is first


def test_message_change_keeps_the_transition_time():
    first, _ = set_condition([], READY, "True", "AllReady", "2/2 ready", T0, 1)
    second, changed = set_condition(first, READY, "True", "AllReady", "3/3 ready", T1, 2)
    assert changed
    assert (second[0].message, second[0].lastTransitionTime, second[0].observedGeneration) == (
        "3/3 ready",
        T0,
        2,
    )


def test_status_flip_moves_the_transition_time():
    first, _ = set_condition([], READY, "True", "AllReady", "ok", T0, 1)
    flipped, changed = set_condition(first, READY, "False", "ReplicaLost", "1/2 ready", T2, 1)
    assert changed and flipped[0].lastTransitionTime == T2


def test_other_conditions_are_kept_in_place():
    conditions, _ = set_condition([], READY, "True", "AllReady", "ok", T0, 1)
    conditions, _ = set_condition(conditions, SLO_MET, "True", "WithinSLO", "p99 fine", T0, 1)
    conditions, _ = set_condition(conditions, READY, "False", "ReplicaLost", "1/2", T1, 1)
    assert [(c.type, c.status) for c in conditions] == [(READY, "False"), (SLO_MET, "True")]


def test_long_messages_are_truncated():
    conditions, _ = set_condition([], READY, "False", "Broken", "x" * 5000, T0, None)
    assert len(conditions[0].message) == MESSAGE_LIMIT and conditions[0].message.endswith("...")
