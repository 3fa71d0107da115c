"""Signals the planner does not take at face value: values no fleet reports, and partial scrapes.

* A value above SIGNAL_CEILING (req/s, tokens/s, requests, seconds) is an exporter or counter fault, not
  a measurement: it is clamped to the ceiling, which sizes the pool at replicas.max, and flagged; a
  negative one is missing. Either way the arithmetic downstream stays finite (1.7e308 requests waiting
  once overflowed the replica count).
* A partial scrape: fewer pods hold the engine's gauges (``scraped_replicas``) than replicas have been
  ready for ``SignalTuning.scrape_grace_s``. The demand sums then cover only some replicas and read as lower demand (3 of
  11 pods scraped once scaled 11 -> 4), so the planner holds as it does without signals. Replicas ready
  for less than the grace may not have been scraped yet and are not expected.
"""

from __future__ import annotations

from ..signals.model import SIGNAL_NAMES, PoolSignals, Sample

SIGNAL_CEILING = 1e9
"""Largest signal value taken as a measurement: no fleet serves a billion requests or tokens per second."""

ReadySeen = tuple[tuple[float, int], ...]
"""(time, ready replicas) of recent ticks, each fewer than every later one (a monotonic queue): the first
entry is the fewest ready over the last scrape grace."""


def in_range(signals: PoolSignals) -> tuple[PoolSignals, str]:
    """``signals`` with values above SIGNAL_CEILING clamped and negative ones missing, and what was changed."""
    changed: dict[str, Sample] = {}
    notes = []
    for name in SIGNAL_NAMES:
        sample = signals.sample(name)
        if sample.value is None or 0 <= sample.value <= SIGNAL_CEILING:
            continue
        if sample.value < 0:
            changed[name] = Sample(missing=f"negative value {sample.value:.4g}", at=sample.at)
        else:
            changed[name] = Sample(value=SIGNAL_CEILING, at=sample.at)
        notes.append(f"{name} {sample.value:.4g}")
    if not notes:
        return signals, ""
    why = f"{', '.join(notes)} outside 0..{SIGNAL_CEILING:g} (an exporter or counter fault?)"
    return signals.model_copy(update=changed), why


def remember_ready(seen: ReadySeen, now: float, ready: int, grace: float) -> ReadySeen:
    """``seen`` with ``ready`` at ``now``; entries older than ``grace`` seconds or no fewer are dropped."""
    kept = [(t, n) for t, n in seen if now - grace < t <= now]
    while kept and kept[-1][1] >= ready:
        kept.pop()
    return (*kept, (now, ready))


def partial_scrape(scraped: Sample, seen: ReadySeen, ready: int) -> str:
    """Why the scrape covers too few replicas ('' when it covers every replica ready for the grace, or
    when the count of scraped replicas is unknown)."""
    expected = seen[0][1] if seen else ready
    if scraped.value is None or scraped.value >= expected:
        return ""
    return (f"only {scraped.value:g} of the {ready} ready replicas were scraped (engine gauges in the last "
            f"scrape), so the demand signals cover only those")
