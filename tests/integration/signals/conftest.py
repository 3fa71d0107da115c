"""A real Prometheus 2.42 for the signals tests: missing binaries FAIL with how to install them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _needs_prometheus(prometheus_binaries: None) -> None:
    """Every test here runs a real Prometheus (the fixture fails when it is not installed)."""
