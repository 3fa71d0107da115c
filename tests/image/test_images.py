"""The images `make image` builds with buildah: the operator's runs as its numeric non-root user, writes
nowhere but its /tmp volume under a read-only root filesystem, and carries no simulator dependencies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

OPERATOR_IMAGE = os.environ.get("INFERENCEFLEET_IMAGE", "localhost/inferencefleet/operator:dev")
ENGINESIM_IMAGE = os.environ.get("INFERENCEFLEET_ENGINESIM_IMAGE", "localhost/inferencefleet/engine-sim:dev")
USER = "65532:65532"
WRITE_PROBE = """
import errno, os, sys
outside = ["/", "/etc", "/opt/inferencefleet", "/opt/inferencefleet/lib", "/usr/local", "/var/tmp", "/root", "/home"]
written = []
for directory in outside:
    try:
        with open(os.path.join(directory, "probe"), "w") as f:
            f.write("x")
        written.append(directory)
    except OSError as error:
        assert error.errno in (errno.EROFS, errno.EACCES, errno.ENOENT), (directory, error)
with open(os.path.join(os.environ["HOME"], "probe"), "w") as f:
    f.write("home is on the tmp volume")
print("written outside /tmp:", written)
"""

VALIDATE_EXAMPLES = """
import glob, os, sys
import inferencefleet
from inferencefleet.cli import main
examples = sorted(glob.glob(os.path.join(os.path.dirname(inferencefleet.__file__), "data", "examples", "*.yaml")))
assert examples
sys.exit(main(["validate", "-f", *examples]))
"""
"""`inferencefleet validate` of the bundled examples: the models, their CRD schema and CEL rules."""


def buildah(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("buildah")
    if exe is None:
        pytest.fail("buildah is missing: apt-get install buildah debootstrap (make test installs them), then make image")
    done = subprocess.run([exe, "--storage-driver", "vfs", *args], capture_output=True, text=True, timeout=600,
                          check=False)
    if check and done.returncode != 0:
        pytest.fail(f"buildah {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


def config(image: str) -> dict[str, Any]:
    """The OCI image configuration of ``image``; fails with what to run when it was not built."""
    done = buildah("inspect", "--type", "image", image, check=False)
    if done.returncode != 0:
        pytest.fail(f"image {image} is not built: run make image ({done.stderr.strip()})")
    return dict(json.loads(done.stdout)["OCIv1"]["config"])


def working_container(image: str) -> Iterator[str]:
    config(image)
    name = buildah("from", "--pull-never", image).stdout.strip().splitlines()[-1]
    try:
        yield name
    finally:
        buildah("rm", name, check=False)


@pytest.fixture(scope="module")
def operator() -> Iterator[str]:
    yield from working_container(OPERATOR_IMAGE)


@pytest.fixture(scope="module")
def enginesim() -> Iterator[str]:
    yield from working_container(ENGINESIM_IMAGE)


def run(container: str, *command: str) -> subprocess.CompletedProcess[str]:
    """``command`` in ``container`` as the image's user (buildah run, chroot isolation)."""
    return buildah("run", "--isolation", "chroot", container, "--", *command, check=False)


def run_read_only(container: str, image: str, *command: str) -> subprocess.CompletedProcess[str]:
    """``command`` as the image's user and environment, the root filesystem mounted read-only and an empty
    tmpfs on /tmp: what Kubernetes runs with readOnlyRootFilesystem and the chart's emptyDir."""
    if os.geteuid() != 0:
        pytest.fail("the read-only root check mounts filesystems: run it as root (buildah's vfs storage is root's)")
    image_config = config(image)
    root = buildah("mount", container).stdout.strip()
    try:
        env = ["/usr/bin/env", "-i", *image_config["Env"]]
        script = (f'mount --make-rprivate / && mount --bind "{root}" "{root}" && mount -o remount,bind,ro "{root}" '
                  f'&& mount -t tmpfs -o size=16m tmpfs "{root}/tmp" && cd "{root}" '
                  f'&& exec chroot --userspec={image_config["User"]} "{root}" "$@"')
        return subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", script, "sh", *env, *command],
                              capture_output=True, text=True, timeout=300, check=False)
    finally:
        buildah("umount", container, check=False)


def test_operator_image_runs_the_operator_as_a_numeric_non_root_user(operator):
    image = config(OPERATOR_IMAGE)
    assert image["User"] == USER and image["Entrypoint"] == ["inferencefleet", "run"]
    assert "HOME=/tmp" in image["Env"] and "PYTHONDONTWRITEBYTECODE=1" in image["Env"]
    assert image["Labels"]["org.opencontainers.image.title"] == "inferencefleet-operator"
    done = run(operator, "python3", "-c", "import os; print(os.getuid(), os.getgid())")
    assert done.stdout.split() == ["65532", "65532"], done.stderr


def test_operator_image_reports_its_version(operator):
    from inferencefleet import __version__

    done = run(operator, "inferencefleet", "--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"inferencefleet {__version__}"), done.stderr


def test_operator_writes_nowhere_but_its_tmp_volume(operator):
    done = run_read_only(operator, OPERATOR_IMAGE, "python3", "-c", WRITE_PROBE)
    assert done.returncode == 0, done.stderr
    assert "written outside /tmp: []" in done.stdout
    # The operator's commands need no write either (no .pyc, no cache).
    done = run_read_only(operator, OPERATOR_IMAGE, "inferencefleet", "run", "--help")
    assert done.returncode == 0 and "--prometheus" in done.stdout, done.stderr
    done = run_read_only(operator, OPERATOR_IMAGE, "python3", "-c", VALIDATE_EXAMPLES)
    assert done.returncode == 0 and "document(s) valid" in done.stderr and "Error" not in done.stderr, done.stderr


@pytest.mark.parametrize("module", ["matplotlib", "numpy"])
def test_operator_image_has_no_simulator_dependencies(operator, module):
    done = run(operator, "python3", "-c", f"import {module}")
    assert done.returncode != 0 and f"No module named '{module}'" in done.stderr


def test_a_simulator_command_in_the_operator_image_names_the_extra(operator):
    done = run(operator, "inferencefleet", "demo")
    assert done.returncode == 2
    assert "pip install 'inferencefleet[sim]'" in done.stderr and "Traceback" not in done.stderr


def test_enginesim_image_serves_vllm_command_lines_as_a_non_root_user(enginesim):
    image = config(ENGINESIM_IMAGE)
    assert image["User"] == USER and image["Entrypoint"] == ["vllm"]
    done = run(enginesim, "python3", "-c", "import os, aiohttp, inferencefleet.enginesim.server; print(os.getuid())")
    assert (done.returncode, done.stdout.strip()) == (0, "65532"), done.stderr
    done = run(enginesim, "vllm", "serve", "--help")
    assert done.returncode == 0 and "--max-num-seqs" in done.stdout, done.stderr


def test_the_operator_image_serves_a_pool_on_the_real_control_plane(operator, control_plane, namespace):
    """The image's entrypoint, as its user, with the chart's ServiceAccount token: it reaches the API server
    on the host network and applies a pool's workload."""
    from ..integration.operator.conftest import create, deployment, example, pool

    api = control_plane.api()
    create(api, example("quota.yaml"))
    create(api, pool("imaged", namespace))
    # The image's user must be able to read its credentials: a world-readable copy (pytest's folders are 0700).
    shared = Path(tempfile.mkdtemp(prefix="image-kubeconfig-"))
    shared.chmod(0o755)
    (shared / "ca.crt").write_bytes(control_plane.cluster.ca.read_bytes())
    config_text = control_plane.operator_kubeconfig.read_text().replace(str(control_plane.cluster.ca),
                                                                        str(shared / "ca.crt"))
    (shared / "kubeconfig").write_text(config_text)
    for path in shared.iterdir():
        path.chmod(0o644)
    try:
        done = buildah("run", "--isolation", "chroot", "--user", USER, "--volume", f"{shared}:{shared}:ro",
                       "--env", f"KUBECONFIG={shared / 'kubeconfig'}", "--env", "INFERENCEFLEET_METRICS_PORT=0",
                       "--env", "INFERENCEFLEET_METRICS_ADDRESS=127.0.0.1", operator, "--",
                       "timeout", "-s", "INT", "30", "inferencefleet", "run", "-A", "--no-leader-elect", check=False)
    finally:
        shutil.rmtree(shared)
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-4000:]
    made = deployment(api, namespace, "imaged")
    assert made is not None, f"the operator in the image applied nothing:\n{output[-4000:]}"
    assert made.metadata.owner_references[0].name == "imaged"
