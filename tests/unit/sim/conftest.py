"""Fixtures for the simulator tests: a transparent linear step model."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class LinearProfile:
    """step = base + per_seq*batch + per_cached*cached + prefill/prefill_rate (seconds)."""

    kv_cache_tokens: int = 400_000
    base: float = 0.0065
    per_seq: float = 10e-6
    per_cached: float = 43e-9
    prefill_rate: float = 35_000.0

    def step_time(self, batch: int, cached_tokens: int, prefill_tokens: int = 0) -> float:
        return self.base + self.per_seq * batch + self.per_cached * cached_tokens + prefill_tokens / self.prefill_rate


@pytest.fixture
def profile() -> LinearProfile:
    return LinearProfile()


@pytest.fixture
def make_profile() -> type[LinearProfile]:
    """The LinearProfile class, for tests that need other parameters."""
    return LinearProfile
