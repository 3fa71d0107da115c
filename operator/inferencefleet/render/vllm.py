"""vLLM (`vllm serve`): argv for one-node replicas and for native multi-node groups (no Ray).

Multi-node groups use vLLM's multiprocessing backend across nodes: every pod runs ``vllm serve``
with ``--nnodes``/``--node-rank``/``--master-addr``; workers add ``--headless``. The rank and
leader address come from the LeaderWorkerSet environment through the kubelet's ``$(VAR)``
expansion, so no shell is involved.
"""

from __future__ import annotations

import json

from ..api.v1alpha1 import InferencePool, SpeculativeSpec
from .engine import Engine, Launch, Role, check_extra_args, inert, served_name
from .errors import RenderError
from .model_source import model_source
from .options import RenderOptions

MASTER_PORT = 29500
MANAGED = frozenset(
    {
        "model", "served-model-name", "host", "port", "tensor-parallel-size", "pipeline-parallel-size",
        "data-parallel-size", "enable-expert-parallel", "max-num-seqs", "max-num-batched-tokens",
        "max-model-len", "quantization", "kv-cache-dtype", "enable-prefix-caching", "speculative-config",
        "distributed-executor-backend", "nnodes", "node-rank", "master-addr", "master-port", "headless",
        "disable-log-stats",
    }
)
ALIASES = {"tp": "tensor-parallel-size", "pp": "pipeline-parallel-size", "dp": "data-parallel-size",
           "q": "quantization"}


def speculative_config(spec: SpeculativeSpec) -> str:
    """The --speculative-config JSON for ``spec`` (compact, sorted keys)."""
    config: dict[str, object] = {"num_speculative_tokens": spec.numSpeculativeTokens}
    if spec.method == "ngram":
        config["method"] = "ngram"
        if spec.promptLookupMax is not None:
            config["prompt_lookup_max"] = spec.promptLookupMax
    else:
        config["model"] = spec.model
        if spec.method == "eagle":
            config["method"] = "eagle"
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def serve_args(pool: InferencePool, max_num_seqs: int, role: Role) -> list[str]:
    """Arguments after ``vllm serve`` (user values already escaped)."""
    spec, topology = pool.spec, pool.spec.topology
    args = [
        inert(model_source(pool).path),
        "--served-model-name", inert(served_name(pool)),
        "--host", "0.0.0.0",
        "--port", str(spec.engine.port),
        "--tensor-parallel-size", str(topology.tensorParallel),
        "--pipeline-parallel-size", str(topology.pipelineParallel),
        "--data-parallel-size", str(topology.dataParallel),
    ]
    if topology.expertParallel:
        args.append("--enable-expert-parallel")
    args += [
        "--max-num-seqs", str(max_num_seqs),
        "--max-num-batched-tokens", str(spec.batching.maxNumBatchedTokens),
        "--max-model-len", str(spec.model.maxContextTokens),
    ]
    if spec.model.quantization == "fp8":
        # fp8 also quantizes a 16-bit checkpoint online. awq and gptq are checkpoint formats that vLLM
        # reads from the checkpoint, picking its fastest kernel (Marlin); '--quantization awq' or 'gptq'
        # would force the slow unfused kernel instead.
        args += ["--quantization", "fp8"]
    args += ["--kv-cache-dtype", spec.engine.kvCacheDtype]
    args.append("--enable-prefix-caching" if spec.engine.prefixCaching else "--no-enable-prefix-caching")
    if spec.engine.speculative is not None:
        args += ["--speculative-config", inert(speculative_config(spec.engine.speculative))]
    if role != "single":
        args += [
            "--distributed-executor-backend", "mp",
            "--nnodes", str(topology.nodesPerReplica),
            "--node-rank", "0" if role == "leader" else "$(LWS_WORKER_INDEX)",
            "--master-addr", "$(LWS_LEADER_ADDRESS)",
            "--master-port", str(MASTER_PORT),
        ]
        if role == "worker":
            args.append("--headless")
    return args + [inert(arg) for arg in spec.engine.extraArgs]


def launch(pool: InferencePool, max_num_seqs: int, role: Role, options: RenderOptions) -> Launch:
    """``vllm serve`` as an argv list; headless workers serve no API."""
    source = model_source(pool)
    return Launch(
        command=["vllm", "serve"],
        args=serve_args(pool, max_num_seqs, role),
        serves_api=role != "worker",
        volumes=source.volumes,
        mounts=source.mounts,
    )


def check(pool: InferencePool, image: str) -> None:
    """vLLM's own limits beyond the shared feasibility rules (any vLLM image)."""
    topology = pool.spec.topology
    if topology.nodesPerReplica > 1 and topology.dataParallel > 1:
        raise RenderError(
            "spec.topology.dataParallel",
            f"{topology.dataParallel} with nodesPerReplica {topology.nodesPerReplica} is not supported for "
            "vllm (native multi-node runs tensor x pipeline parallel); allowed: dataParallel 1 on "
            "multi-node pools, or nodesPerReplica 1",
        )
    check_extra_args(pool, ENGINE)


ENGINE = Engine(
    kind="vllm",
    metrics_path="/metrics",
    quantizations=("none", "awq", "gptq", "fp8"),
    managed_flags=MANAGED,
    aliases=ALIASES,
    launch=launch,
    config_files=lambda pool: {},
    check=check,
)
