"""Attainment against GPU-hours: a policy's settings as a curve, and whether one curve lies on or above another.

A policy's curve is what its settings can buy: at a budget of g GPU-hours, the largest share of
requests meeting both SLOs among its settings that cost at most g. It is a step function through
the settings actually run, never an interpolation between two of them, which no single run realises.

Our curve lies on or above a baseline's where, for each baseline setting at least as costly as our
cheapest, some setting of ours costs no more and meets at least as many requests. A baseline setting
cheaper than all of ours is outside our curve's range; it is reported apart, neither above nor below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """One run of a policy at one value of its knob."""

    value: float
    """The knob's value (a target utilization, a queue target, a replica count, ...)."""
    gpu_hours: float
    attainment: float
    """Share of requests meeting both SLOs."""


def best_within(curve: Sequence[Setting], budget: float) -> Setting | None:
    """The setting with the most attainment among those costing at most ``budget`` (None: all cost more)."""
    affordable = [s for s in curve if s.gpu_hours <= budget]
    return max(affordable, key=lambda s: (s.attainment, -s.gpu_hours)) if affordable else None


@dataclass(frozen=True)
class CurveComparison:
    """Each baseline setting against our curve."""

    matched: tuple[tuple[Setting, Setting], ...]
    """(baseline setting, our setting costing no more with at least its attainment)."""
    above: tuple[tuple[Setting, Setting], ...]
    """(baseline setting above our curve, our best setting within its GPU-hours)."""
    outside: tuple[Setting, ...]
    """Baseline settings cheaper than every setting of ours."""

    @property
    def on_or_above(self) -> bool:
        """True when no baseline setting lies above our curve."""
        return not self.above


def compare(ours: Sequence[Setting], theirs: Sequence[Setting]) -> CurveComparison:
    """Where each of ``theirs`` lies against the curve of ``ours`` (module docstring)."""
    if not ours:
        raise ValueError("our curve needs at least one setting")
    matched, above, outside = [], [], []
    for setting in theirs:
        best = best_within(ours, setting.gpu_hours)
        if best is None:
            outside.append(setting)
        elif best.attainment >= setting.attainment:
            matched.append((setting, best))
        else:
            above.append((setting, best))
    return CurveComparison(tuple(matched), tuple(above), tuple(outside))
