"""Operator-level settings that shape rendered objects but are not part of a pool's spec."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..api.v1alpha1 import InferencePool

DEFAULT_IMAGES: dict[str, str] = {
    "vllm": "vllm/vllm-openai:v0.11.0",
    "trtllm": "nvcr.io/nvidia/tensorrt-llm/release:1.0.0",
}


@dataclass(frozen=True)
class RenderOptions:
    """Settings from the operator's configuration (or CLI flags for offline rendering)."""

    images: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_IMAGES))
    """Engine image per engine kind, used when the pool sets no engine.image."""
    scrape_interval: str = "5s"
    """PodMonitor scrape interval (Prometheus duration)."""
    owner_uid: str | None = None
    """UID of the InferencePool; None falls back to metadata.uid, and without one ownerReferences are omitted."""
    node_gpus: int | None = None
    """GPUs per node for the feasibility check; None uses the pool's topology.gpu.gpusPerNode."""
    dollars_per_gpu_hour: float | None = None
    """Price of the pool's GPU type (from the FleetQuota); adds cost annotations when set."""
    mpi_ssh_secret: str = "{pool}-mpi-ssh"
    """Secret with SSH keys for multi-node TensorRT-LLM (MPI); '{pool}' is replaced by the pool name."""

    def image_for(self, pool: InferencePool) -> str:
        """The engine image the pool runs: its own engine.image, else the operator's image for the engine."""
        return pool.spec.engine.image or self.images[pool.spec.engine.kind]
