"""Checks that a pool can run as specified, before anything is rendered."""

from __future__ import annotations

from ..api.v1alpha1 import InferencePool
from .engine import Engine, check_values_are_not_flags
from .errors import RenderError
from .options import RenderOptions
from .trtllm import ENGINE as TRTLLM
from .vllm import ENGINE as VLLM

ENGINES: dict[str, Engine] = {VLLM.kind: VLLM, TRTLLM.kind: TRTLLM}


def engine_for(pool: InferencePool) -> Engine:
    """The engine renderer for ``spec.engine.kind``."""
    return ENGINES[pool.spec.engine.kind]


def check_pool(pool: InferencePool, options: RenderOptions) -> Engine:
    """Raise RenderError naming the field if the pool cannot run; return its engine."""
    topology = pool.spec.topology
    node_gpus = options.node_gpus or topology.gpu.gpusPerNode
    per_node = topology.gpus_per_node
    if per_node > node_gpus:
        raise RenderError(
            "spec.topology",
            f"each pod needs {per_node} GPUs (tensorParallel x pipelineParallel x dataParallel = "
            f"{topology.gpus} over nodesPerReplica {topology.nodesPerReplica}) but a node has {node_gpus}; "
            f"allowed: at most {node_gpus} GPUs per node (raise nodesPerReplica or lower the parallel degrees)",
        )
    tp = topology.tensorParallel
    if per_node % tp and tp % per_node:
        raise RenderError(
            "spec.topology.tensorParallel",
            f"{tp} does not fit the {per_node} GPUs of each node: a tensor-parallel group must fill whole "
            f"nodes or sit inside one; allowed: a divisor or a multiple of {per_node}",
        )
    engine = engine_for(pool)
    quantization = pool.spec.model.quantization
    if quantization not in engine.quantizations:
        raise RenderError(
            "spec.model.quantization",
            f"'{quantization}' is not supported by engine '{engine.kind}'; allowed: "
            f"{', '.join(engine.quantizations)} (or use an engine that supports it)",
        )
    check_values_are_not_flags(pool)
    engine.check(pool, options.image_for(pool))
    return engine


def check_replicas(replicas: int, max_num_seqs: int) -> None:
    """Refuse nonsensical operator inputs."""
    if replicas < 0:
        raise RenderError("replicas", f"must be 0 or more, got {replicas}")
    if max_num_seqs < 1:
        raise RenderError("maxNumSeqs", f"must be 1 or more, got {max_num_seqs}")
