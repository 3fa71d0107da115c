"""Duration strings: parsing, stable printing, and the CRD pattern for positive durations."""

from __future__ import annotations

import pytest
import re2
from hypothesis import example, given
from hypothesis import strategies as st

from inferencefleet.api.crdgen import POSITIVE_DURATION_PATTERN
from inferencefleet.api.durations import PATTERN, format_duration, parse_duration

_NUMBER = st.sampled_from(["0", "00", "1", "007"]) | st.integers(0, 99999).map(str)
_FRACTION = st.sampled_from(["", ".0", ".000", ".5", ".001"]) | st.integers(0, 999).map(lambda n: f".{n}")
DURATION_TEXT = st.lists(
    st.tuples(_NUMBER, _FRACTION, st.sampled_from(["ns", "us", "ms", "s", "m", "h"])).map("".join),
    min_size=1,
    max_size=4,
).map("".join)
"""Strings of the duration grammar, zero groups included."""


@given(DURATION_TEXT)
def test_generated_text_is_in_the_grammar(text):
    assert re2.search(PATTERN, text)


@given(DURATION_TEXT)
def test_duration_text_is_stable_after_one_round(text):
    seconds = parse_duration(text)
    canonical = format_duration(seconds)
    assert format_duration(parse_duration(canonical)) == canonical
    assert parse_duration(canonical) == pytest.approx(seconds, rel=1e-6, abs=1e-9)


@example("0s")
@example("0ms0s")
@example("00.000h")
@example("0.0001ns")
@example("0s1ms")
@given(DURATION_TEXT)
def test_positive_duration_pattern_accepts_exactly_the_positive_durations(text):
    assert bool(re2.search(POSITIVE_DURATION_PATTERN, text)) == (parse_duration(text) > 0)


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        ("800ms", 0.8, "800ms"),
        ("2m", 120, "2m"),
        ("1h30m", 5400, "1h30m"),
        ("90s", 90, "90s"),
        ("150m", 9000, "2h30m"),
        ("0s", 0, "0s"),
    ],
)
def test_duration_examples(text, seconds, canonical):
    assert parse_duration(text) == pytest.approx(seconds)
    assert format_duration(parse_duration(text)) == canonical


@pytest.mark.parametrize("text", ["", "5", "1 s", "-1s", "1d", "1s\n", "ms"])
def test_bad_durations_name_what_is_allowed(text):
    with pytest.raises(ValueError, match="must be a duration string such as '800ms'"):
        parse_duration(text)
