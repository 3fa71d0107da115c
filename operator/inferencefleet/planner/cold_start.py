"""Cold start: how long a new replica takes to become ready, measured on the pool's own replicas.

A replica that was starting at the last tick and is ready now took ``now - its creation time``; the
measured cold start is an EWMA of those (``SignalTuning.cold_start_alpha``) and wins over
``spec.autoscaling.coldStart`` once seen. Nothing is measured across a clock step (creation times come
from the API server's clock and are not shifted).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from .tuning import SignalTuning

if TYPE_CHECKING:
    from .types import PoolObservation


@dataclass(frozen=True)
class ColdStart:
    """What a pool's memory keeps: the measured cold start and the replicas starting and ready at the last tick."""

    seconds: Annotated[float, Field(gt=0)] | None = None
    """Measured replica ready time (smoothed); None until a replica was seen becoming ready."""
    starting_since: tuple[float, ...] = ()
    """Creation times of the replicas that were starting at the last tick."""
    ready_replicas: Annotated[int, Field(ge=0)] | None = None
    """Ready replicas at the last tick."""

    def observed(self, observation: PoolObservation, now: float, clock_stepped: bool,
                 tuning: SignalTuning) -> ColdStart:
        """The estimate after a tick that observed ``observation``."""
        seconds = self.seconds if clock_stepped else self._measured(observation, now, tuning)
        return ColdStart(seconds, observation.starting_since, observation.ready_replicas)

    def _measured(self, observation: PoolObservation, now: float, tuning: SignalTuning) -> float | None:
        gone = Counter(self.starting_since) - Counter(observation.starting_since)  # replicas share creation times
        became_ready = sorted(gone.elements())  # removed replicas are the newest: the oldest became ready
        newly_ready = observation.ready_replicas - (self.ready_replicas or 0)
        samples = [now - t for t in became_ready[: max(newly_ready, 0)]]
        if not samples:
            return self.seconds
        sample = sum(samples) / len(samples)
        return sample if self.seconds is None else self.seconds + tuning.cold_start_alpha * (sample - self.seconds)
