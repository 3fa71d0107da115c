"""A real Prometheus 2.42 for the signals tests: missing binaries FAIL with how to install them."""

from __future__ import annotations

import pytest

from inferencefleet.signals.testing import PrometheusMissing, binary


@pytest.fixture(scope="session", autouse=True)
def prometheus_binaries() -> None:
    """Fail (never skip) when prometheus or promtool is not installed."""
    try:
        binary("prometheus")
        binary("promtool")
    except PrometheusMissing as error:
        pytest.fail(str(error), pytrace=False)
