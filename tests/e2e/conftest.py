"""The e2e suite's clusters: the integration suites' real control plane with kwok's fake nodes (shared by
import), and the cluster the in-cluster suite runs on: the one ``E2E_KUBECONFIG`` names, or else a control
plane with a real worker node (``cluster/node.py``) that this suite starts and then reaches through its
kubeconfig alone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..image.test_images import ENGINESIM_IMAGE, OPERATOR_IMAGE
from ..integration.enginesim.conftest import start_engine
from ..integration.operator.conftest import ClusterAccess, control_plane, localcluster, namespace

__all__ = ["control_plane", "e2e_cluster", "namespace", "start_engine"]

import node  # cluster/node.py: cluster/ is on sys.path once the operator conftest is imported
import nodeimages

SCENARIO_ENGINE_IMAGE = "docker.io/inferencefleet/engine-sim:dev"
"""The scenario files' ``inferencefleet/engine-sim:dev``, as the kubelet resolves it."""
UPSTREAM_PROMETHEUS_IMAGE = f"quay.io/prometheus/prometheus:v{localcluster.prometheus_version()}"
"""The release cluster/prometheus builds here, as clusters that reach quay.io pull it."""


@dataclass
class E2ECluster(ClusterAccess):
    """A cluster the suite reaches through its kubeconfig alone, with the images its nodes run."""

    kubeconfig: Path
    operator_image: str
    prometheus_image: str


@pytest.fixture(scope="module")
def e2e_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    """``E2E_KUBECONFIG``'s cluster (``INFERENCEFLEET_IMAGE`` and ``E2E_PROMETHEUS_IMAGE`` name the images its
    nodes run or pull), or else a control plane with one real node (no kwok nodes) started here, with the images
    ``make image`` built imported into the node; for one test module, so that it is gone before the next module
    starts its own control plane."""
    named = os.environ.get("E2E_KUBECONFIG")
    if named:
        if not Path(named).is_file():
            pytest.fail(f"E2E_KUBECONFIG={named} is not a kubeconfig file", pytrace=False)
        yield E2ECluster(Path(named), OPERATOR_IMAGE, os.environ.get("E2E_PROMETHEUS_IMAGE", UPSTREAM_PROMETHEUS_IMAGE))
        return
    try:
        images = {OPERATOR_IMAGE: (), ENGINESIM_IMAGE: (SCENARIO_ENGINE_IMAGE,), nodeimages.prometheus_image(): ()}
        with node.running_with_node(tmp_path_factory.mktemp("node-cluster"), images) as real:
            yield E2ECluster(real.cluster.kubeconfig, OPERATOR_IMAGE, nodeimages.PROMETHEUS_IMAGE)
    except localcluster.ClusterError as error:
        pytest.fail(f"the control plane with a real node did not start: {error}", pytrace=False)
