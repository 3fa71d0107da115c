"""What Prometheus would show the operator about simulated pools, as a SignalsSnapshot.

Pure. Every ``scrape_interval`` the fleet calls ``scrape`` with each pool's cumulative counters
(replicas that were removed keep contributing their last values, like ``sum(rate(...))`` over
series that ended) and gauges. ``snapshot(at)`` answers the same signals as
``signals.promql`` over the scrapes of the last ``window`` seconds before ``at``:
- ``request_rate`` (finished requests, ``vllm:request_success_total``), prompt and output token
  rates: ``rate()`` = increase between the first and last scrape in the window over their distance
  (what Prometheus' extrapolation gives for regularly spaced scrapes);
- running, waiting: sums at the last scrape; kv_cache_usage: mean over ready replicas;
- ttft/itl p50 and p99, e2e p99: ``histogram_quantile`` over the increase of each bucket;
- ready_replicas: replicas scraped (``up``); scraped_replicas: replicas whose gauges the scrape read
  (ready or draining).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..signals.buckets import E2E_EDGES, ITL_EDGES, TTFT_EDGES
from ..signals.model import SIGNAL_NAMES, PoolKey, PoolSignals, Sample, SignalsSnapshot
from .histogram import histogram_quantile
from .replica import ReplicaStats


@dataclass
class Counters:
    """Cumulative counters of one pool: the sum over every replica it ever had."""

    finished: float = 0.0
    prompt_tokens: float = 0.0
    generation_tokens: float = 0.0
    ttft: list[float] = field(default_factory=lambda: [0.0] * (len(TTFT_EDGES) + 1))
    itl: list[float] = field(default_factory=lambda: [0.0] * (len(ITL_EDGES) + 1))
    e2e: list[float] = field(default_factory=lambda: [0.0] * (len(E2E_EDGES) + 1))

    def add(self, stats: ReplicaStats) -> None:
        """Add one replica's cumulative stats."""
        self.finished += stats.requests_finished
        self.prompt_tokens += stats.prompt_tokens
        self.generation_tokens += stats.generation_tokens
        for mine, theirs in ((self.ttft, stats.ttft), (self.itl, stats.itl), (self.e2e, stats.e2e)):
            for i, c in enumerate(theirs.counts):
                mine[i] += c

    @classmethod
    def total(cls, base: Counters, replicas: Iterable[ReplicaStats]) -> Counters:
        """``base`` (retired replicas) plus the live replicas."""
        out = cls(base.finished, base.prompt_tokens, base.generation_tokens,
                  list(base.ttft), list(base.itl), list(base.e2e))
        for stats in replicas:
            out.add(stats)
        return out


@dataclass(frozen=True)
class PoolScrape:
    """One scrape of one pool."""

    at: float
    counters: Counters
    running: float
    waiting: float
    kv_usage: float | None
    """Mean over ready replicas; None when none is ready."""
    ready: int
    scraped: int
    """Replicas whose gauges this scrape read (ready or draining)."""


class PromView:
    """Scrape history per pool and the signals Prometheus would answer from it."""

    def __init__(self, *, window: float = 60.0, quantiles: tuple[float, float] = (0.5, 0.99)) -> None:
        if window <= 0:
            raise ValueError(f"window must be > 0 seconds (got {window})")
        self.window = window
        self.quantiles = quantiles
        self._history: dict[PoolKey, deque[PoolScrape]] = {}

    def scrape(self, pools: Mapping[PoolKey, PoolScrape]) -> None:
        """Record one scrape of every pool; history older than the window is dropped."""
        for key, scrape in pools.items():
            history = self._history.setdefault(key, deque())
            history.append(scrape)
            while len(history) > 2 and history[1].at <= scrape.at - self.window:
                history.popleft()

    def snapshot(self, at: float) -> SignalsSnapshot:
        """Signals of every scraped pool, evaluated at ``at`` over the last ``window`` seconds."""
        return SignalsSnapshot(at=at, pools=[self._pool(key, at) for key in sorted(self._history)])

    def _pool(self, key: PoolKey, at: float) -> PoolSignals:
        namespace, name = key
        scrapes = [s for s in self._history[key] if at - self.window < s.at <= at]
        if not scrapes:
            gone = Sample.absent(f"no scrape in the last {self.window:g}s")
            return PoolSignals(namespace=namespace, pool=name, at=at, **{n: gone for n in SIGNAL_NAMES})
        last = scrapes[-1]
        values: dict[str, Sample] = {
            "running": Sample.of(last.running, last.at),
            "waiting": Sample.of(last.waiting, last.at),
            "ready_replicas": Sample.of(last.ready, last.at),
            "scraped_replicas": Sample.of(last.scraped, last.at),
            "kv_cache_usage": (
                Sample.of(last.kv_usage, last.at) if last.kv_usage is not None
                else Sample.absent("no ready replica exports KV-cache usage")
            ),
        }
        if len(scrapes) < 2:
            few = Sample.absent(f"fewer than 2 scrapes in the {self.window:g}s window")
            values.update({n: few for n in _RATES + _QUANTILES})
        else:
            first = scrapes[0]
            span = last.at - first.at
            a, b = first.counters, last.counters
            values["request_rate"] = Sample.of((b.finished - a.finished) / span, last.at)
            values["prompt_tokens_per_second"] = Sample.of((b.prompt_tokens - a.prompt_tokens) / span, last.at)
            values["output_tokens_per_second"] = Sample.of(
                (b.generation_tokens - a.generation_tokens) / span, last.at
            )
            p50, p99 = self.quantiles
            ttft = _increase(a.ttft, b.ttft)
            itl = _increase(a.itl, b.itl)
            values["ttft_p50"] = Sample.of(histogram_quantile(p50, TTFT_EDGES, ttft), last.at)
            values["ttft_p99"] = Sample.of(histogram_quantile(p99, TTFT_EDGES, ttft), last.at)
            values["itl_p50"] = Sample.of(histogram_quantile(p50, ITL_EDGES, itl), last.at)
            values["itl_p99"] = Sample.of(histogram_quantile(p99, ITL_EDGES, itl), last.at)
            values["e2e_p99"] = Sample.of(histogram_quantile(p99, E2E_EDGES, _increase(a.e2e, b.e2e)), last.at)
        return PoolSignals(namespace=namespace, pool=name, at=at, **values)


_RATES = ("request_rate", "prompt_tokens_per_second", "output_tokens_per_second")
_QUANTILES = ("ttft_p50", "ttft_p99", "itl_p50", "itl_p99", "e2e_p99")


def _increase(before: list[float], after: list[float]) -> list[float]:
    return [y - x for x, y in zip(before, after, strict=True)]
