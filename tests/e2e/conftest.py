"""The e2e scenarios in CI: the integration suites' real control plane and engine simulator, shared by import."""

from __future__ import annotations

from ..integration.enginesim.conftest import start_engine
from ..integration.operator.conftest import control_plane, namespace

__all__ = ["control_plane", "namespace", "start_engine"]
