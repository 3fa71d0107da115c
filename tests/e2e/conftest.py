"""The e2e scenarios in CI: the integration suites' emulated API server and engine simulator, shared by import."""

from __future__ import annotations

from ..integration.enginesim.conftest import start_engine
from ..integration.operator.conftest import apiserver

__all__ = ["apiserver", "start_engine"]
