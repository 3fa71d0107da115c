"""The image tests run the operator image against the integration suites' real control plane."""

from __future__ import annotations

from ..integration.operator.conftest import control_plane, namespace

__all__ = ["control_plane", "namespace"]
