"""A pool's signal history on a regular time grid, from range-query answers (pure).

``history_reader.read_history`` fills it from Prometheus. A step with no value (a scrape gap, a
pool that did not exist yet) is None, never zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import PoolKey
from .promql import NAMESPACE_LABEL, POOL_LABEL

HISTORY_SIGNALS = ("request_rate", "prompt_tokens_per_second", "output_tokens_per_second", "ready_replicas",
                   "ttft_p99", "itl_p99")


@dataclass(frozen=True)
class PoolHistory:
    """One pool's signals on the grid ``start + k x step`` (k = 0 .. steps - 1); None where Prometheus had none."""

    key: PoolKey
    start: float
    step: float
    values: Mapping[str, Sequence[float | None]]
    """Signal name (HISTORY_SIGNALS) -> one value per step."""

    @property
    def steps(self) -> int:
        return len(next(iter(self.values.values()), ()))

    def series(self, name: str) -> Sequence[float | None]:
        return self.values.get(name, [None] * self.steps)


def grid(start: float, end: float, step: float) -> list[float]:
    """The evaluation times of a range query from ``start`` to ``end`` (inclusive) every ``step``."""
    return [start + k * step for k in range(int((end - start) // step) + 1)]


def from_matrices(matrices: Mapping[str, Sequence[Mapping[str, Any]]], start: float, end: float,
                  step: float) -> dict[PoolKey, PoolHistory]:
    """Every pool's history from range-query answers (signal name -> the ``result`` list of a matrix)."""
    times = grid(start, end, step)
    index = {round(t, 3): k for k, t in enumerate(times)}
    table: dict[PoolKey, dict[str, list[float | None]]] = {}
    for name, result in matrices.items():
        for item in result:
            key = (item["metric"][NAMESPACE_LABEL], item["metric"][POOL_LABEL])
            row = table.setdefault(key, {}).setdefault(name, [None] * len(times))
            for at, text in item["values"]:
                value = float(text)
                k = index.get(round(float(at), 3))
                if k is not None and math.isfinite(value):
                    row[k] = value
    return {key: PoolHistory(key, start, step, {n: rows.get(n, [None] * len(times)) for n in HISTORY_SIGNALS})
            for key, rows in sorted(table.items())}
