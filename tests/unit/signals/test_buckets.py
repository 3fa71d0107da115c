"""The bucket a histogram quantile was read from."""

from __future__ import annotations

import math

import pytest

from inferencefleet.signals.buckets import ITL_EDGES, bucket


@pytest.mark.parametrize(("value", "expected"), [
    (0.074, (0.05, 0.075)), (0.075, (0.05, 0.075)), (0.0751, (0.075, 0.1)), (0.005, (0.0, 0.01)),
    (100.0, (80.0, math.inf)),
])
def test_a_value_lies_in_the_bucket_whose_upper_edge_is_the_first_at_or_above_it(value, expected):
    assert bucket(ITL_EDGES, value) == expected
