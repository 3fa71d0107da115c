"""Shared test configuration."""

from __future__ import annotations

import pytest

from inferencefleet.signals.testing import PrometheusMissing, binary


@pytest.fixture(scope="session")
def prometheus_binaries() -> None:
    """Fail (never skip) when prometheus or promtool is not installed, saying how to install them."""
    try:
        binary("prometheus")
        binary("promtool")
    except PrometheusMissing as error:
        pytest.fail(str(error), pytrace=False)
