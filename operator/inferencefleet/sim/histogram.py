"""Prometheus-style cumulative histograms with vLLM's bucket edges (signals.buckets), and histogram_quantile.

Pure. The replica observes into these; ``promview`` differences them between scrapes and takes
quantiles exactly the way PromQL's ``histogram_quantile`` does over the same edges.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence


class Histogram:
    """Cumulative-by-construction counts per bucket (last bucket is +Inf), plus sum and count."""

    __slots__ = ("count", "counts", "edges", "sum")

    def __init__(self, edges: Sequence[float]) -> None:
        self.edges = tuple(edges)
        self.counts = [0.0] * (len(self.edges) + 1)
        self.sum = 0.0
        self.count = 0.0

    def observe(self, value: float, weight: float = 1.0) -> None:
        """Record ``weight`` observations of ``value`` (Prometheus ``le`` semantics: value <= edge)."""
        self.counts[bisect_left(self.edges, value)] += weight
        self.sum += value * weight
        self.count += weight

    def observe_linear(self, first: float, step: float, n: int, weight: float) -> None:
        """Record ``weight`` observations of each of ``first + i*step`` for i in 0..n-1 (step >= 0)."""
        if n <= 0:
            return
        self.sum += weight * (n * first + step * n * (n - 1) / 2)
        self.count += n * weight
        low = bisect_left(self.edges, first)
        last = first + (n - 1) * step
        if low == len(self.edges) or last <= self.edges[low]:  # all in one bucket (the usual case)
            self.counts[low] += n * weight
            return
        high = bisect_left(self.edges, last, low)
        done = 0
        for bucket in range(low, high):
            # values first + i*step <= edge  <=>  i <= (edge - first) / step
            upto = min(n, math.floor((self.edges[bucket] - first) / step) + 1) if step > 0 else n
            if upto > done:
                self.counts[bucket] += (upto - done) * weight
                done = upto
        self.counts[high] += (n - done) * weight


def cumulative(counts: Sequence[float]) -> list[float]:
    """Per-bucket counts -> cumulative counts (the ``_bucket{le=...}`` series)."""
    total, out = 0.0, []
    for c in counts:
        total += c
        out.append(total)
    return out


def histogram_quantile(q: float, edges: Sequence[float], counts: Sequence[float]) -> float:
    """PromQL ``histogram_quantile(q, ...)`` over per-bucket counts (the last one is +Inf).

    Linear interpolation inside the bucket holding the rank; the first bucket interpolates from 0;
    a rank in the +Inf bucket returns the highest finite edge; no observations gives NaN.
    """
    buckets = cumulative(counts)
    total = buckets[-1]
    if total <= 0 or math.isnan(total):
        return math.nan
    rank = q * total
    index = bisect_left(buckets, rank)
    if index >= len(edges):
        return edges[-1]
    lower_edge = edges[index - 1] if index > 0 else 0.0
    lower_count = buckets[index - 1] if index > 0 else 0.0
    in_bucket = buckets[index] - lower_count
    if in_bucket <= 0:
        return edges[index]
    return lower_edge + (edges[index] - lower_edge) * (rank - lower_count) / in_bucket
