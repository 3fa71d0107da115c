"""Builders for planner tests: pools, quotas, signals, and a tiny world that applies decisions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from inferencefleet.api.v1alpha1 import FleetQuota, InferencePool
from inferencefleet.planner.controller import tick
from inferencefleet.planner.memory import FleetState
from inferencefleet.planner.quota import QuotaUnavailable
from inferencefleet.planner.tuning import DEFAULT_TUNING, PlannerTuning
from inferencefleet.planner.types import PoolDecision, PoolObservation, TickResult
from inferencefleet.signals.model import PoolSignals, Sample, SignalsSnapshot


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


LOAD_TEST = {"requestsPerSecond": 6.0, "promptTokens": 2000, "outputTokens": 300}
"""A spec.capacity.loadTest for ``pool``: 6 req/s at 2,000 prompt and 300 output tokens."""


def pool(name: str = "p", tier: str = "free", **spec: Any) -> InferencePool:
    """An 8B-on-one-H100 pool (min 1, max 20, Managed, Fixed 256) with ``spec`` merged in."""
    base = {
        "model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "parametersBillions": 8},
        "replicas": {"min": 1, "max": 20},
        "autoscaling": {"slo": {"ttftP99": "2s", "itlP99": "60ms"}, "coldStart": "120s"},
        "batching": {"mode": "Fixed", "maxNumSeqs": {"min": 8, "max": 256}},
        "tier": tier,
    }
    return InferencePool.model_validate(
        {"metadata": {"name": name, "namespace": "ns"}, "spec": _merge(base, spec)}
    )


def quota(gpus: int | None = None, dollars: float | None = None, tiers: Sequence[dict[str, Any]] = (),
          prices: dict[str, float] | None = None) -> FleetQuota:
    """A FleetQuota with the given fleet limits and tiers (default: premium/standard/free, no limits)."""
    tiers = tiers or [{"name": "premium", "priority": 100}, {"name": "standard", "priority": 50},
                      {"name": "free", "priority": 10}]
    prices = prices or {"H100-80GB": 3.0, "A100-80GB": 1.8}
    limits = {k: v for k, v in (("gpus", gpus), ("dollarsPerHour", dollars)) if v is not None}
    return FleetQuota.model_validate({
        "metadata": {"name": "default"},
        "spec": {"gpuPrices": [{"type": t, "dollarsPerHour": p} for t, p in prices.items()],
                 "limits": limits, "tiers": list(tiers)},
    })


def signals(name: str, at: float, rate: float | None, waiting: float = 0.0, running: float | None = None,
            itl: float | None = None, ttft: float | None = None, prompt: float = 1024, output: float = 256,
            namespace: str = "ns", sampled_at: float | None = None) -> PoolSignals:
    """Signals of one pool; ``rate`` None makes the demand signals missing."""
    when = at if sampled_at is None else sampled_at

    def sample(value: float | None) -> Sample:
        return Sample.absent("no series for this pool") if value is None else Sample.of(value, when)

    busy = None if rate is None else (running if running is not None else rate * 4)
    return PoolSignals(
        namespace=namespace, pool=name, at=at,
        request_rate=sample(rate), waiting=sample(None if rate is None else waiting), running=sample(busy),
        prompt_tokens_per_second=sample(None if rate is None else rate * prompt),
        output_tokens_per_second=sample(None if rate is None else rate * output),
        itl_p99=sample(itl), ttft_p99=sample(ttft),
    )


@dataclass
class World:
    """Pools whose decisions are applied at every tick: new replicas are ready after ``ready_after`` s."""

    pools: list[InferencePool]
    quota: FleetQuota | QuotaUnavailable | None = None
    ready_after: float = 0.0
    now: float = 10_000.0
    state: FleetState = field(default_factory=FleetState)
    replicas: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    """Per pool: the creation time of every replica."""
    max_num_seqs: dict[tuple[str, str], int] = field(default_factory=dict)
    tuning: PlannerTuning = DEFAULT_TUNING

    def __post_init__(self) -> None:
        for p in self.pools:
            self.replicas.setdefault(("ns", p.metadata.name), [0.0] * p.spec.replicas.min)

    def observation(self, key: tuple[str, str]) -> PoolObservation:
        created = self.replicas[key]
        # ready_after 0: ready at once, also after a backward clock step that puts creation times ahead
        starting = tuple(t for t in created if self.now - t < self.ready_after) if self.ready_after else ()
        return PoolObservation(len(created), len(created) - len(starting), self.max_num_seqs.get(key, 256) if created
                               else None, starting)

    def step(self, rates: dict[str, float | None], dt: float = 15.0, **extra: Any) -> TickResult:
        """Advance ``dt`` seconds and tick with ``rates`` (req/s per pool name); apply Managed decisions."""
        self.now += dt
        snapshot = SignalsSnapshot(at=self.now, pools=[
            signals(name, self.now, rate, **extra) for name, rate in rates.items()
        ])
        observed = {key: self.observation(key) for key in self.replicas}
        result = tick(self.pools, self.quota, snapshot, observed, self.state, self.now, self.tuning)
        self.state = result.state
        for decision in result.decisions:
            if decision.applied:
                self._apply(decision)
        return result

    def _apply(self, decision: PoolDecision) -> None:
        created = self.replicas[decision.key]
        while len(created) < decision.desired_replicas:
            created.append(self.now)
        del created[decision.desired_replicas:]
        self.max_num_seqs[decision.key] = decision.max_num_seqs


@pytest.fixture(scope="session")
def make_pool() -> Callable[..., InferencePool]:
    return pool


@pytest.fixture(scope="session")
def make_quota() -> Callable[..., FleetQuota]:
    return quota


@pytest.fixture(scope="session")
def make_signals() -> Callable[..., PoolSignals]:
    return signals


@pytest.fixture(scope="session")
def make_world() -> Callable[..., World]:
    return World
