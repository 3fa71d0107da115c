"""TensorRT-LLM (`trtllm-serve`, PyTorch backend): argv, the extra-options file, and MPI multi-node groups.

Speculative decoding, KV-cache settings and chunked prefill go into an extra LLM-API options
YAML file (a ConfigMap); sizes and batch limits stay on the command line so that changing them
changes the pod template. A multi-node group is one MPI world: the leader runs a fixed launch
script that reads the LeaderWorkerSet environment and passes its arguments through ``"$@"`` to
``mpirun``: ``-x NAME`` for each engine env var (ranks started over ssh do not inherit the pod's
environment), then ``trtllm-llmapi-launch`` and the engine argv. Workers run sshd.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..api.v1alpha1 import InferencePool, SpeculativeSpec
from .engine import Engine, Launch, Role, check_extra_args, inert, served_name
from .errors import RenderError
from .model_source import model_source
from .options import RenderOptions

CONFIG_FILE = "extra-llm-api-options.yaml"
CONFIG_DIR = "/etc/inferencefleet/trtllm"
CONFIG_VOLUME = "trtllm-config"
SSH_VOLUME = "mpi-ssh"
KV_CACHE_FRACTION = 0.9
SERVED_NAME_SINCE = (1, 3, 0, 7)
"""First release whose trtllm-serve takes --served_model_name (1.3.0rc7, TensorRT-LLM PR 11711)."""
RELEASE_TAG = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:rc(\d+))?(?:\.post\d+)?")
MANAGED = frozenset(
    {
        "host", "port", "backend", "tp-size", "pp-size", "ep-size", "max-batch-size", "max-num-tokens",
        "max-seq-len", "served-model-name", "extra-llm-api-options", "kv-cache-free-gpu-memory-fraction",
        "kv-cache-dtype",
    }
)
ALIASES = {"tensor-parallel-size": "tp-size", "pipeline-parallel-size": "pp-size", "moe-expert-parallel-size": "ep-size",
           "free-gpu-memory-fraction": "kv-cache-free-gpu-memory-fraction", "config": "extra-llm-api-options"}
"""Long spellings newer trtllm-serve releases accept for the managed flags."""

# Fixed text: user values never appear in it; they arrive as "$@" (argv) and env vars.
LEADER_SCRIPT = """set -eu
leader="${LWS_LEADER_ADDRESS%%.*}"
domain="${LWS_LEADER_ADDRESS#*.}"
hosts="${LWS_LEADER_ADDRESS}:${INFERENCEFLEET_GPUS_PER_NODE}"
i=1
while [ "$i" -lt "$LWS_GROUP_SIZE" ]; do
  worker="${leader}-${i}.${domain}"
  until getent hosts "$worker" >/dev/null 2>&1; do sleep 2; done
  hosts="${hosts},${worker}:${INFERENCEFLEET_GPUS_PER_NODE}"
  i=$((i + 1))
done
exec mpirun --allow-run-as-root --bind-to none -np "$INFERENCEFLEET_WORLD_SIZE" -H "$hosts" \\
  -mca plm_rsh_args "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null" \\
  -x HF_TOKEN -x HF_HOME "$@"
"""
WORKER_SCRIPT = "ssh-keygen -A >/dev/null && exec /usr/sbin/sshd -D -e"


def config_name(pool: InferencePool) -> str:
    """Name of the pool's extra-options ConfigMap."""
    return f"{pool.metadata.name}-trtllm-options"


def speculative_config(spec: SpeculativeSpec) -> dict[str, Any]:
    """The LLM-API speculative_config for ``spec``."""
    if spec.method == "ngram":
        config: dict[str, Any] = {"decoding_type": "NGram", "max_draft_len": spec.numSpeculativeTokens}
        if spec.promptLookupMax is not None:
            config["max_matching_ngram_size"] = spec.promptLookupMax
        return config
    decoding_type = "Eagle" if spec.method == "eagle" else "DraftTarget"
    return {
        "decoding_type": decoding_type,
        "max_draft_len": spec.numSpeculativeTokens,
        "speculative_model_dir": spec.model,
    }


def options_yaml(pool: InferencePool) -> str:
    """The extra LLM-API options file (deterministic YAML)."""
    engine, topology = pool.spec.engine, pool.spec.topology
    options: dict[str, Any] = {
        "enable_chunked_prefill": True,
        "enable_iter_perf_stats": True,
        "return_perf_metrics": True,
        "kv_cache_config": {
            "dtype": engine.kvCacheDtype,
            "enable_block_reuse": engine.prefixCaching,
            "free_gpu_memory_fraction": KV_CACHE_FRACTION,
        },
    }
    if topology.dataParallel > 1:
        options["enable_attention_dp"] = True
    if engine.speculative is not None:
        options["speculative_config"] = speculative_config(engine.speculative)
    return yaml.safe_dump(options, sort_keys=True, default_flow_style=False)


def serve_args(pool: InferencePool, max_num_seqs: int) -> list[str]:
    """``trtllm-serve`` argv (user values already escaped)."""
    spec, topology = pool.spec, pool.spec.topology
    # Attention data parallel reuses the tensor-parallel ranks: the MPI world is tp x pp.
    tp_size = topology.tensorParallel * topology.dataParallel
    model_path = model_source(pool).path
    args = ["trtllm-serve", inert(model_path)]
    if served_name(pool) != model_path:
        args += ["--served_model_name", inert(served_name(pool))]
    args += [
        "--host", "0.0.0.0",
        "--port", str(spec.engine.port),
        "--backend", "pytorch",
        "--tp_size", str(tp_size),
        "--pp_size", str(topology.pipelineParallel),
    ]
    if topology.expertParallel:
        args += ["--ep_size", str(tp_size)]
    args += [
        "--max_batch_size", str(max_num_seqs),
        "--max_num_tokens", str(spec.batching.maxNumBatchedTokens),
        "--max_seq_len", str(spec.model.maxContextTokens),
        "--extra_llm_api_options", f"{CONFIG_DIR}/{CONFIG_FILE}",
    ]
    return args + [inert(arg) for arg in spec.engine.extraArgs]


def _ssh(pool: InferencePool, options: RenderOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    secret = options.mpi_ssh_secret.format(pool=pool.metadata.name)
    volume = {
        "name": SSH_VOLUME,
        "secret": {
            "secretName": secret,
            "defaultMode": 0o400,
            "items": [
                {"key": "id_ed25519", "path": "id_ed25519"},
                {"key": "authorized_keys", "path": "authorized_keys"},
            ],
        },
    }
    return volume, {"name": SSH_VOLUME, "mountPath": "/root/.ssh", "readOnly": True}


def launch(pool: InferencePool, max_num_seqs: int, role: Role, options: RenderOptions) -> Launch:
    """The single-node argv, or the MPI leader / sshd worker of a multi-node group."""
    source = model_source(pool)
    config_volume = {"name": CONFIG_VOLUME, "configMap": {"name": config_name(pool)}}
    config_mount = {"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True}
    volumes, mounts = [config_volume, *source.volumes], [config_mount, *source.mounts]
    args = serve_args(pool, max_num_seqs)
    if role == "single":
        return Launch(command=args[:1], args=args[1:], volumes=volumes, mounts=mounts)
    ssh_volume, ssh_mount = _ssh(pool, options)
    volumes, mounts = [*volumes, ssh_volume], [*mounts, ssh_mount]
    if role == "worker":
        return Launch(["/bin/sh", "-c", WORKER_SCRIPT], [], serves_api=False, volumes=volumes, mounts=mounts)
    topology = pool.spec.topology
    env = [
        {"name": "INFERENCEFLEET_GPUS_PER_NODE", "value": str(topology.gpus_per_node)},
        {"name": "INFERENCEFLEET_WORLD_SIZE", "value": str(topology.gpus)},
    ]
    forward = [arg for name in sorted(pool.spec.engine.env) for arg in ("-x", inert(name))]
    return Launch(["/bin/sh", "-c", LEADER_SCRIPT, "trtllm-leader"], [*forward, "trtllm-llmapi-launch", *args],
                  env=env, volumes=volumes, mounts=mounts)


def release(image: str) -> tuple[int, int, int, float] | None:
    """(major, minor, patch, rc) of a release-tagged image ('...:1.3.0rc7'; a final release's rc is inf), else None."""
    tag = image.split("@", 1)[0].rpartition("/")[2].partition(":")[2]
    match = RELEASE_TAG.fullmatch(tag)
    if match is None:
        return None
    major, minor, patch, rc = match.groups()
    return int(major), int(minor), int(patch), float(rc) if rc else float("inf")


def check_served_name(pool: InferencePool, image: str) -> None:
    """Refuse a served name the image's trtllm-serve cannot set (images without a release tag are trusted)."""
    path = model_source(pool).path
    version = release(image)
    if served_name(pool) == path or version is None or version >= SERVED_NAME_SINCE:
        return
    raise RenderError(
        "spec.engine.image",
        f"{image!r} predates trtllm-serve's --served_model_name (TensorRT-LLM 1.3.0rc7), which this pool "
        f"needs to serve {served_name(pool)!r} from the model path {path!r}; allowed: an image of "
        "TensorRT-LLM 1.3.0rc7 or later, or spec.model.servedName equal to the model path",
    )


def check(pool: InferencePool, image: str) -> None:
    """TensorRT-LLM's own limits beyond the shared feasibility rules."""
    check_served_name(pool, image)
    topology, model = pool.spec.topology, pool.spec.model
    if topology.dataParallel > 1 and model.architecture != "moe":
        raise RenderError(
            "spec.topology.dataParallel",
            f"{topology.dataParallel} needs model.architecture 'moe' on trtllm (attention data parallel "
            "is for MoE models); allowed: dataParallel 1 for dense models (add replicas instead)",
        )
    check_extra_args(pool, ENGINE)


ENGINE = Engine(
    kind="trtllm",
    metrics_path="/prometheus/metrics",
    quantizations=("none", "awq", "fp8"),
    managed_flags=MANAGED,
    aliases=ALIASES,
    launch=launch,
    config_files=lambda pool: {CONFIG_FILE: options_yaml(pool)},
    check=check,
)
