"""Images for the real node's containerd, from buildah's local storage: no registry is reachable here.

``make image`` builds the operator and engine-sim images with buildah (vfs storage). Each image is written
once to an OCI archive in ``.cluster/images`` (named by image id, so a rebuilt image is written again) and
imported into containerd's ``k8s.io`` namespace, where the kubelet finds it (pods use imagePullPolicy
IfNotPresent or Never). The pod sandbox image (``cluster/node/pause``) and the e2e suite's Prometheus image
(``cluster/prometheus``) are built here, each a static binary alone in a scratch image.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from localcluster import BIN, CACHE, ClusterError, prometheus_version

PAUSE_IMAGE = "localhost/inferencefleet/pause:dev"
PROMETHEUS_IMAGE = f"localhost/inferencefleet/prometheus:v{prometheus_version()}"
"""Prometheus as built in cluster/prometheus, for the e2e suite's in-cluster Prometheus (quay.io's image elsewhere)."""
ARCHIVES = CACHE / "images"
DIGEST_LABEL = "io.inferencefleet.binary.sha256"
"""The binary's digest, kept on a single-binary image so that a rebuilt binary rebuilds the image."""


def buildah(*args: str) -> str:
    """Run buildah on the vfs storage ``make image`` uses; its output."""
    if shutil.which("buildah") is None:
        raise ClusterError("buildah is needed to load images into the real node: apt-get install buildah "
                           "(make image installs it)")
    done = subprocess.run(["buildah", "--storage-driver", "vfs", *args], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise ClusterError(f"buildah {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def image_id(image: str) -> str:
    """The id of a local image; fails saying how to build it when it is missing."""
    try:
        return buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", image)
    except ClusterError as error:
        raise ClusterError(f"image {image} is not in buildah's storage: run `make image` ({error})") from None


def binary_image(image: str, binary: str, user: str) -> str:
    """Build ``image``, the static ``binary`` from .cluster/bin alone in a scratch image running as ``user``,
    unless it already holds the current binary."""
    digest = hashlib.sha256((BIN / binary).read_bytes()).hexdigest()
    with contextlib.suppress(ClusterError):  # no such image yet
        if buildah("inspect", "--type", "image", "--format",
                   f'{{{{index .ImageAnnotations "{DIGEST_LABEL}"}}}}', image) == digest:
            return image
    container = buildah("from", "scratch")
    try:
        buildah("copy", container, str(BIN / binary), f"/bin/{binary}")
        buildah("config", "--entrypoint", f'["/bin/{binary}"]', "--user", user,
                "--annotation", f"{DIGEST_LABEL}={digest}", container)
        buildah("commit", "--quiet", container, image)
    finally:
        buildah("rm", container)
    return image


def pause_image() -> str:
    """The pod sandbox image."""
    return binary_image(PAUSE_IMAGE, "pause", "65535:65535")


def prometheus_image() -> str:
    """The e2e suite's Prometheus image; it runs as nobody, as the upstream image does."""
    return binary_image(PROMETHEUS_IMAGE, "prometheus", "65534:65534")


def archive(image: str) -> Path:
    """The image as an OCI archive whose index names it ``image`` (written once per image id)."""
    ident = image_id(image)
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", image)
    path = ARCHIVES / f"{stem}-{ident[:12]}.tar"
    if not path.exists():
        ARCHIVES.mkdir(parents=True, exist_ok=True)
        for stale in ARCHIVES.glob(f"{stem}-*.tar"):
            stale.unlink()
        staged = path.with_suffix(".partial")
        staged.unlink(missing_ok=True)
        buildah("push", "--quiet", image, f"oci-archive:{staged}:{image}")
        staged.rename(path)
    return path


def load(ctr: Callable[..., str], images: dict[str, tuple[str, ...]]) -> None:
    """Import each image into containerd's k8s.io namespace, also under its ``images`` aliases (names a pod
    spec may use, e.g. a scenario's unqualified ``inferencefleet/engine-sim:dev``)."""
    for image, aliases in images.items():
        ctr("images", "import", str(archive(image)))
        for alias in aliases:
            ctr("images", "tag", "--force", image, alias)
