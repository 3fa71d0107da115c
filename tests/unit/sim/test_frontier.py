"""Curves of attainment against GPU-hours: a baseline setting is matched, above our curve or outside it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferencefleet.sim.frontier import Setting, best_within, compare

OURS = [Setting(0.6, 10.0, 0.90), Setting(0.8, 8.0, 0.97), Setting(1.0, 6.0, 0.80)]


def test_best_within_picks_the_most_attainment_that_the_budget_buys() -> None:
    assert best_within(OURS, 9.0) == Setting(0.8, 8.0, 0.97)
    assert best_within(OURS, 7.0) == Setting(1.0, 6.0, 0.80)
    assert best_within(OURS, 5.9) is None


def test_a_baseline_setting_is_matched_only_by_a_setting_that_costs_no_more() -> None:
    result = compare(OURS, [Setting(2.0, 8.0, 0.97), Setting(4.0, 7.5, 0.85)])
    assert [(b.value, o.value) for b, o in result.matched] == [(2.0, 0.8)]
    assert [(b.value, o.value) for b, o in result.above] == [(4.0, 1.0)]
    assert not result.on_or_above


def test_no_interpolation_between_our_settings() -> None:
    """Halfway between our 6 and 8 GPU-hour settings, only the 6 GPU-hour one is affordable."""
    result = compare(OURS, [Setting(1.0, 7.0, 0.85)])
    assert result.above and result.above[0][1].gpu_hours == 6.0


def test_cheaper_than_all_of_ours_is_outside_not_above() -> None:
    result = compare(OURS, [Setting(0.5, 3.0, 0.99)])
    assert result.outside == (Setting(0.5, 3.0, 0.99),)
    assert result.on_or_above


def test_an_empty_curve_of_ours_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one setting"):
        compare([], [Setting(1.0, 1.0, 1.0)])


settings = st.builds(Setting, st.floats(0, 10), st.floats(0.1, 100), st.floats(0, 1))


@given(st.lists(settings, min_size=1, max_size=8), st.lists(settings, max_size=8))
def test_every_baseline_setting_lands_in_exactly_one_place(ours: list[Setting], theirs: list[Setting]) -> None:
    result = compare(ours, theirs)
    placed = [b for b, _ in result.matched] + [b for b, _ in result.above] + list(result.outside)
    assert sorted(placed, key=repr) == sorted(theirs, key=repr)
    for baseline, mine in result.matched + result.above:
        assert mine.gpu_hours <= baseline.gpu_hours


@given(st.lists(settings, min_size=1, max_size=8))
def test_a_curve_lies_on_or_above_itself(curve: list[Setting]) -> None:
    assert compare(curve, curve).on_or_above
