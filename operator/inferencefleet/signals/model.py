"""What the operator knows about each pool at one tick: typed, timestamped, and honest about gaps.

Pure (no I/O). The Prometheus adapter produces these; the planner and the simulator consume them;
``inferencefleet signals -o json`` prints them and ``inferencefleet plan --signals`` reads them.
A value that is NaN, infinite, absent or stale is *missing* with a reason, never zero.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

PoolKey = tuple[str, str]
"""(namespace, name) of an InferencePool."""

SIGNAL_NAMES: tuple[str, ...] = (
    "request_rate",
    "prompt_tokens_per_second",
    "output_tokens_per_second",
    "running",
    "waiting",
    "kv_cache_usage",
    "ttft_p50",
    "ttft_p99",
    "itl_p50",
    "itl_p99",
    "e2e_p99",
    "ready_replicas",
    "scraped_replicas",
)
"""Every scaling signal, in the order tables print them. Latencies are in seconds, rates per second.
``ready_replicas`` counts the pool's scrape targets that answered (``up``); ``scraped_replicas`` the pods
whose engine request gauges the last scrape holds, the pods the demand sums cover: fewer than the ready
replicas is a partial scrape, and the planner holds (planner.signal_checks)."""

ACCOUNTING_NAMES: tuple[str, ...] = ("gpu_power_watts", "gpu_utilization")
"""Optional DCGM signals for cost and power accounting, never for scaling: watts summed over the
pool's GPUs, utilisation 0..1 averaged over them. Their absence does not count as missing."""


_CONFIG = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
"""A NaN or infinite value is never a sample (Sample.of turns them into missing ones)."""


class Sample(BaseModel):
    """One signal value with the time it was observed, or the reason it is missing."""

    model_config = _CONFIG

    value: float | None = None
    at: float | None = None
    """Unix time of the sample."""
    missing: str | None = None
    """Why there is no value (no series, NaN, stale, query failed...)."""

    @classmethod
    def of(cls, value: float, at: float) -> Sample:
        """A present value; NaN and infinities become missing."""
        if math.isnan(value):
            return cls(missing="value is NaN (no events in the window)", at=at)
        if math.isinf(value):
            return cls(missing="value is infinite (quantile above the last finite bucket)", at=at)
        return cls(value=value, at=at)

    @classmethod
    def absent(cls, reason: str) -> Sample:
        """A missing value and why."""
        return cls(missing=reason)

    @property
    def ok(self) -> bool:
        return self.value is not None


class PoolSignals(BaseModel):
    """All signals of one pool (namespace + name) at one tick."""

    model_config = _CONFIG

    namespace: str
    pool: str
    at: float
    """Unix time of the tick."""
    request_rate: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    prompt_tokens_per_second: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    output_tokens_per_second: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    running: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    waiting: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    kv_cache_usage: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    ttft_p50: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    ttft_p99: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    itl_p50: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    itl_p99: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    e2e_p99: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    ready_replicas: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    scraped_replicas: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    gpu_power_watts: Sample = Field(default_factory=lambda: Sample.absent("not queried"))
    gpu_utilization: Sample = Field(default_factory=lambda: Sample.absent("not queried"))

    @property
    def key(self) -> PoolKey:
        return (self.namespace, self.pool)

    def sample(self, name: str) -> Sample:
        """The sample called ``name`` (one of SIGNAL_NAMES or ACCOUNTING_NAMES)."""
        value = getattr(self, name)
        assert isinstance(value, Sample)
        return value

    def missing(self) -> dict[str, str]:
        """Signal name -> reason for every missing scaling signal (accounting signals are optional)."""
        return {n: s.missing or "missing" for n in SIGNAL_NAMES if not (s := self.sample(n)).ok}


class SignalsSnapshot(BaseModel):
    """Signals of every pool at one tick: the JSON document of ``signals -o json`` / ``plan --signals``."""

    model_config = _CONFIG

    at: float
    """Unix time of the tick."""
    pools: list[PoolSignals] = Field(default_factory=list)

    _by_key: dict[PoolKey, PoolSignals] | None = PrivateAttr(default=None)

    def for_pool(self, namespace: str, name: str) -> PoolSignals:
        """Signals of one pool; a pool with no series at all gets every signal missing."""
        if self._by_key is None or len(self._by_key) != len(self.pools):
            self._by_key = {s.key: s for s in reversed(self.pools)}  # the first entry of a key wins
        found = self._by_key.get((namespace, name))
        if found is not None:
            return found
        return PoolSignals(namespace=namespace, pool=name, at=self.at, **{
            n: Sample.absent("no series for this pool") for n in (*SIGNAL_NAMES, *ACCOUNTING_NAMES)
        })
