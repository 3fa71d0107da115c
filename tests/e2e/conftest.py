"""The e2e scenarios in CI: the integration suites' real control plane and engine simulator, shared by import,
and a control plane with a real worker node (``cluster/node.py``) whose pods run for real."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..image.test_images import ENGINESIM_IMAGE, OPERATOR_IMAGE
from ..integration.enginesim.conftest import start_engine
from ..integration.operator.conftest import ControlPlane, control_plane, localcluster, namespace

__all__ = ["control_plane", "namespace", "real_node", "start_engine"]

import node  # cluster/node.py: cluster/ is on sys.path once the operator conftest is imported

SCENARIO_ENGINE_IMAGE = "docker.io/inferencefleet/engine-sim:dev"
"""The scenario files' ``inferencefleet/engine-sim:dev``, as the kubelet resolves it."""


@pytest.fixture(scope="module")
def real_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlPlane, node.RealNode]]:
    """A control plane with one real node (no kwok nodes) running the images ``make image`` built; for one
    test module, so that it is gone before the next module starts its own control plane."""
    images = {OPERATOR_IMAGE: (), ENGINESIM_IMAGE: (SCENARIO_ENGINE_IMAGE,)}
    try:
        with node.running_with_node(tmp_path_factory.mktemp("node-cluster"), images) as real:
            yield ControlPlane(real.cluster), real
    except localcluster.ClusterError as error:
        pytest.fail(f"the control plane with a real node did not start: {error}", pytrace=False)
