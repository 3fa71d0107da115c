"""Where the engine loads weights from: a Hugging Face id (cached on the cache volume) or a mounted PVC."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api.v1alpha1 import InferencePool
from .errors import RenderError

WEIGHTS_VOLUME = "model-weights"
WEIGHTS_ROOT = "/models/weights"
SCHEMES = ("hf", "pvc")


@dataclass(frozen=True)
class ModelSource:
    """The model argument for the engine plus any volume it needs."""

    path: str
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)


def model_source(pool: InferencePool) -> ModelSource:
    """The engine's model argument for ``model.uri`` (default ``hf://<model.name>``)."""
    model = pool.spec.model
    uri = model.uri or f"hf://{model.name}"
    scheme, _, rest = uri.partition("://")
    if scheme == "hf":
        return ModelSource(rest)
    if scheme == "pvc":
        claim, _, sub_path = rest.partition("/")
        return ModelSource(
            f"{WEIGHTS_ROOT}/{sub_path}".rstrip("/"),
            volumes=[{"name": WEIGHTS_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
            mounts=[{"name": WEIGHTS_VOLUME, "mountPath": WEIGHTS_ROOT, "readOnly": True}],
        )
    raise RenderError(
        "spec.model.uri",
        f"scheme '{scheme}://' is not supported by the renderer yet; allowed: "
        f"{', '.join(s + '://' for s in SCHEMES)} (copy s3/gs/oci weights to a PVC and use pvc://CLAIM/PATH)",
    )
