"""vLLM's latency histogram bucket edges, and the bucket a quantile read from them lies in.

PromQL's histogram_quantile interpolates linearly inside the bucket that holds the quantile's rank,
so a p99 read from these histograms is only known to lie in that bucket: a true p99 of 55 ms and
one of 74 ms both read as anything in (50 ms, 75 ms], depending on how the bucket's count is spread.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

TTFT_EDGES: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)
"""vllm:time_to_first_token_seconds bucket upper bounds (seconds)."""
ITL_EDGES: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)
"""vllm:inter_token_latency_seconds bucket upper bounds (seconds)."""
E2E_EDGES: tuple[float, ...] = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
)
"""vllm:e2e_request_latency_seconds bucket upper bounds (seconds)."""


def bucket(edges: Sequence[float], value: float) -> tuple[float, float]:
    """The bucket (lower, upper] of ``edges`` that holds ``value`` (lower 0 for the first, upper inf past the last)."""
    index = bisect_left(edges, value)
    return (edges[index - 1] if index > 0 else 0.0), (edges[index] if index < len(edges) else math.inf)


@dataclass(frozen=True)
class LatencyBuckets:
    """The bucket edges of an engine's TTFT and ITL histograms."""

    ttft: tuple[float, ...]
    itl: tuple[float, ...]


VLLM_BUCKETS = LatencyBuckets(TTFT_EDGES, ITL_EDGES)
