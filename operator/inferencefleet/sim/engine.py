"""The simulator's own model of a replica's engine, separate from the planner's capacity profile.

Step and prefill times are interpolated from measured H100 tables (``data/calibration/h100_steps.csv``,
see its README), never from ``planner.capacity``: the planner must find the engine through its
online correction, as it must in a real cluster.

* Decode step at batch b holding ``cached`` context tokens: ``at_2048(b) + per_token(b) x (cached -
  b x 2048)``, linear between measured batches (and beyond the last two). At a batch measured at
  several contexts both come from the least-squares line over them; elsewhere ``at_2048`` is the
  step measured at 2048 tokens per sequence and ``per_token`` the nearest such batch's slope (for
  Mixtral, measured at one context only, the KV streaming estimate MIXTRAL_PER_CACHED_TOKEN_S). The
  step stays affine in cached tokens at a fixed batch, as ``sim.replica``'s fast path needs.
* A prefill chunk of p tokens adds ``max(0, prefill(p) - weight pass)``: ``prefill`` is linear between
  the measured prompt lengths (through the origin below the first), and the weight pass, the step at
  batch 1 with an empty context, is shared with the decodes of the same step.
* ``EngineOptions``: ``error`` scales every true step and prefill time (+0.25: the engine is 25%
  slower than measured); each replica draws its own factor around it (lognormal, ``replica_spread``)
  and its own cold start around the declared one (lognormal, ``cold_start_spread``), both seeded.
Pools with no measured table (other sizes, GPUs or topologies than the three references) use the
planner's profile with the same error and spread: their engine is then known to the planner. The KV
cache holds what ``planner.capacity`` sizes from memory (a fact of memory, not of speed).
"""

from __future__ import annotations

import csv
import math
import random
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources

from ..api.v1alpha1 import InferencePoolSpec
from ..planner.capacity import profile_for
from .replica import StepModel

TABLE = "h100_steps.csv"
CONTEXT = 2048
"""Context tokens per sequence of the decode rows measured at every batch."""
MIXTRAL_PER_CACHED_TOKEN_S = 64 * 1024 / 3.03e12
"""Mixtral TP2+EP2: 64 KiB of KV per token per GPU streamed at 3.03 TB/s (measured H100 bandwidth)."""


@dataclass(frozen=True)
class EngineOptions:
    """How the simulated engines differ from the measured tables."""

    error: float = 0.0
    """True step and prefill times are (1 + error) x the measured ones (--engine-error)."""
    replica_spread: float = 0.05
    """Lognormal sigma of each replica's own speed factor around (1 + error)."""
    cold_start_spread: float = 0.2
    """Lognormal sigma of each replica's cold start around the declared spec.autoscaling.coldStart."""
    seed: int = 0

    def __post_init__(self) -> None:
        if not -0.9 <= self.error <= 10.0:
            raise ValueError(f"--engine-error: {self.error:+.0%} is out of range (allowed: -90% to +1000%)")
        if self.replica_spread < 0 or self.cold_start_spread < 0:
            raise ValueError("engine spreads must be >= 0")


@dataclass(frozen=True)
class TableEngine:
    """A replica's engine from a measured table (see the module docstring), times x ``factor``."""

    name: str
    kv_cache_tokens: int
    batches: tuple[float, ...]
    at_context: tuple[float, ...]
    """Seconds of a decode step at each batch, 2048 context tokens per sequence."""
    per_token: tuple[float, ...]
    """Added seconds per cached token at each batch."""
    prompts: tuple[float, ...]
    prefill: tuple[float, ...]
    """Seconds to prefill each of ``prompts`` tokens alone."""
    factor: float = 1.0

    def decode_time(self, batch: float, cached_tokens: float) -> float:
        """Seconds of a decode step of ``batch`` sequences holding ``cached_tokens`` in all."""
        base = _interpolate(self.batches, self.at_context, batch)
        slope = _interpolate(self.batches, self.per_token, batch)
        return self.factor * max(base + slope * (cached_tokens - batch * CONTEXT), 0.0)

    def prefill_time(self, tokens: float) -> float:
        """Seconds to prefill ``tokens`` prompt tokens alone."""
        if tokens <= self.prompts[0]:
            return self.factor * self.prefill[0] * max(tokens, 0.0) / self.prompts[0]
        return self.factor * _interpolate(self.prompts, self.prefill, tokens)

    @property
    def weight_pass(self) -> float:
        """The step at batch 1 with an empty context: what a prefill chunk shares with the decodes."""
        return self.decode_time(1, 0)

    def step_time(self, batch: int, cached_tokens: int, prefill_tokens: int = 0) -> float:
        """Seconds of one engine step (``sim.replica.StepModel``)."""
        if batch <= 0 and prefill_tokens <= 0:
            return 0.0
        decode = self.decode_time(batch, cached_tokens) if batch > 0 else 0.0
        if prefill_tokens <= 0:
            return decode
        chunk = self.prefill_time(prefill_tokens)
        return decode + max(0.0, chunk - self.weight_pass) if batch > 0 else chunk


@dataclass
class EngineFactory:
    """Builds each new replica's engine and cold start for one pool (seeded, so runs repeat)."""

    spec: InferencePoolSpec
    options: EngineOptions
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.options.seed}/{self.spec.model.name}/{self.spec.topology.gpus}")

    def typical(self) -> StepModel:
        """The engine at the pool's mean speed (the load test's replica)."""
        return engine_for(self.spec, 1.0 + self.options.error)

    def replica(self) -> tuple[StepModel, float]:
        """A new replica's engine and its cold start (seconds)."""
        speed = (1.0 + self.options.error) * self._lognormal(self.options.replica_spread)
        cold = self.spec.autoscaling.coldStart * self._lognormal(self.options.cold_start_spread)
        return engine_for(self.spec, speed), cold

    def _lognormal(self, sigma: float) -> float:
        """Mean-one lognormal factor."""
        return math.exp(self._rng.gauss(-sigma * sigma / 2, sigma)) if sigma > 0 else 1.0


def engine_for(spec: InferencePoolSpec, factor: float = 1.0) -> StepModel:
    """The engine of one replica of ``spec`` with every time x ``factor``."""
    profile = profile_for(spec)
    if profile.name in _tables():
        return replace(_tables()[profile.name], kv_cache_tokens=profile.kv_cache_tokens, factor=factor)
    return profile.scaled(factor, factor)


@cache
def _tables() -> dict[str, TableEngine]:
    rows: dict[str, list[dict[str, str]]] = {}
    with (resources.files("inferencefleet") / "data" / "calibration" / TABLE).open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["engine"], []).append(row)
    return {name: _table(name, measured) for name, measured in rows.items()}


def _table(name: str, rows: list[dict[str, str]]) -> TableEngine:
    decode: dict[int, list[tuple[float, float]]] = {}
    prefill: list[tuple[float, float]] = []
    for row in rows:
        seconds = float(row["step_ms"]) / 1e3
        if row["phase"] == "decode":
            batch = int(row["batch"])
            decode.setdefault(batch, []).append((batch * float(row["context_tokens"]), seconds))
        else:
            prefill.append((float(row["prompt_tokens"]), seconds))
    batches = sorted(b for b, points in decode.items() if any(c == b * CONTEXT for c, _ in points))
    fitted = {b: _slope(points) for b, points in decode.items() if len(points) > 1}
    default = MIXTRAL_PER_CACHED_TOKEN_S if not fitted else None
    slopes = tuple(default if default is not None else fitted[min(fitted, key=lambda m: abs(m - b))]
                   for b in batches)
    at_context = tuple(_at(decode[b], b * CONTEXT, fitted[b]) if b in fitted else
                       next(s for c, s in decode[b] if c == b * CONTEXT) for b in batches)
    prefill.sort()
    return TableEngine(name, 0, tuple(map(float, batches)), at_context, slopes,
                       tuple(p for p, _ in prefill), tuple(s for _, s in prefill))


def _slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of seconds over cached tokens."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def _at(points: Sequence[tuple[float, float]], x: float, slope: float) -> float:
    """The least-squares line with ``slope`` through ``points``, at ``x``."""
    n = len(points)
    return sum(y for _, y in points) / n + slope * (x - sum(c for c, _ in points) / n)


def _interpolate(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """Piecewise-linear through (xs, ys), extended linearly beyond both ends (one point: constant)."""
    if len(xs) == 1:
        return ys[0]
    i = min(max(bisect_left(xs, x), 1), len(xs) - 1)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
