"""The replicas-needed window behind the scale-down delay (planner.autoscale)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from inferencefleet.planner.autoscale import Needs, most_needed, remembered

KEEP = 300.0


@given(st.lists(st.tuples(st.floats(1.0, 60.0), st.integers(0, 50)), min_size=1, max_size=80), st.floats(0.0, 1.0))
def test_the_window_answers_the_most_needed_since_any_time_within_it(ticks, share):
    needs: Needs = ()
    now = 0.0
    seen = []
    for gap, needed in ticks:
        now += gap
        needs = remembered(needs, now, needed, KEEP)
        seen.append((now, needed))
    since = now - share * KEEP
    assert most_needed(needs, since) == max(n for t, n in seen if t >= since)
    assert all(now - t <= KEEP for t, _ in needs)
    assert all(a[1] > b[1] for a, b in itertools.pairwise(needs))  # only what can still be the most
