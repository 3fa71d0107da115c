"""Request shape: the mean prompt and output lengths a pool's replicas are sized for.

The plan takes the longer of the current rate window's lengths and the smoothed ones (``TokenRates``,
EWMA over ``ShapeTuning.length_tau_s``): longer requests count at once, and a few minutes of short
ones do not shrink the fleet that long ones return to. A window counts at once only when it holds
at least ``ShapeTuning.min_window_requests``: the mean of a few requests in a lull is one long
prompt. Until a pool reports token rates the tuning's default lengths are planned for. Requests are
counted as completions plus those admitted (the growth of the running requests over the rate
window), since engines count prompt tokens at prefill.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..signals.model import PoolSignals
from .slo import TokenRates, Workload
from .tuning import ShapeTuning

RATE_WINDOW_S = 60.0
"""The window of the rates the signals report (signals.promql.query's default)."""

Running = tuple[tuple[float, float], ...]
"""(time, requests running) of the ticks within the last rate window, oldest first."""


def _admitted(history: Running) -> float:
    """Growth of the running requests per second over the rate window, 0 if unknown."""
    if len(history) < 2:
        return 0.0
    (first, before), (last, after) = history[0], history[-1]
    return (after - before) / (last - first)


@dataclass(frozen=True)
class RequestShape:
    """What a pool's memory keeps of its request shape: the smoothed token rates (kept while the pool is
    idle) and the running requests of the last rate window."""

    rates: TokenRates | None = None
    running: Running = ()

    def observed(self, signals: PoolSignals, now: float, dt: float | None, max_context_tokens: int,
                 tuning: ShapeTuning) -> tuple[RequestShape, Workload]:
        """The shape after a tick that showed ``signals`` ``dt`` seconds after the last (None: the first),
        and the workload to size for."""
        kept = tuple((t, n) for t, n in self.running if t >= now - RATE_WINDOW_S)
        running = kept if signals.running.value is None else (*kept, (now, signals.running.value))
        window = TokenRates.of(signals, _admitted(running))
        rates = window if self.rates is None or dt is None else self.rates.updated(window, dt, tuning)
        smoothed = None if rates is None else rates.workload(max_context_tokens)
        current = None
        if window is not None and window.requests * RATE_WINDOW_S >= tuning.min_window_requests:
            current = window.workload(max_context_tokens)
        if current is not None:
            workload = current.longer(smoothed)
        else:
            workload = smoothed or Workload.default(max_context_tokens, tuning)
        return RequestShape(rates, running), workload

    @property
    def admitted(self) -> float:
        """Growth of the running requests per second over the last rate window (0 if unknown)."""
        return _admitted(self.running)

    def shifted(self, by: float) -> RequestShape:
        """The same shape with its times moved by ``by`` seconds (a clock step)."""
        return RequestShape(self.rates, tuple((t + by, n) for t, n in self.running))
