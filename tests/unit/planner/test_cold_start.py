"""The measured cold start (planner.cold_start): how long the pool's own replicas took to become ready."""

from __future__ import annotations

import pytest

from inferencefleet.planner.cold_start import ColdStart
from inferencefleet.planner.tuning import DEFAULT_TUNING
from inferencefleet.planner.types import PoolObservation


def observed(memory: ColdStart, now: float, replicas: int, ready: int, starting: tuple[float, ...]) -> ColdStart:
    return memory.observed(PoolObservation(replicas, ready, None, starting), now, False, DEFAULT_TUNING.signals)


def test_a_replica_ready_is_measured_from_its_creation():
    memory = observed(ColdStart(), 100.0, 3, 2, (40.0,))
    assert observed(memory, 105.0, 3, 3, ()).seconds == pytest.approx(65.0)


def test_a_starting_replica_removed_as_another_created_with_it_becomes_ready_is_not_measured():
    # Two replicas created at t = 0 and one at t = 240; at t = 250 one of the first two is ready and the
    # newest was removed (given back): the cold start is the 250 s the first took, not the removed one's 10 s.
    memory = observed(ColdStart(), 245.0, 9, 6, (0.0, 0.0, 240.0))
    after = observed(memory, 250.0, 8, 7, (0.0,))
    assert after.seconds == pytest.approx(250.0)


def test_a_starting_replica_removed_teaches_nothing():
    memory = observed(ColdStart(), 245.0, 9, 6, (0.0, 240.0))
    assert observed(memory, 250.0, 8, 6, (0.0,)).seconds is None
