"""Engine argument sets (vLLM, TensorRT-LLM) as the issue lists them, single- and multi-node."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.render.workloads import render_pool


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind)


def flags(args: list[str]) -> dict[str, str | None]:
    """'--flag value' / '--flag' pairs of an argv tail (values do not start with '--')."""
    out: dict[str, str | None] = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            nxt = args[i + 1] if i + 1 < len(args) else None
            out[arg] = None if nxt is None or nxt.startswith("--") else nxt
    return out


def containers(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The engine container per role: single, leader, worker."""
    if any(o["kind"] == "Deployment" for o in objects):
        return {"single": by_kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]}
    group = by_kind(objects, "LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]
    return {role: group[f"{role}Template"]["spec"]["containers"][0] for role in ("leader", "worker")}


VLLM_FULL = {
    "model": {"name": "org/moe", "servedName": "chat", "architecture": "moe", "quantization": "fp8",
              "maxContextTokens": 16384},
    "engine": {"kvCacheDtype": "fp8", "prefixCaching": False,
               "speculative": {"method": "ngram", "numSpeculativeTokens": 5, "promptLookupMax": 3}},
    "topology": {"tensorParallel": 2, "pipelineParallel": 2, "dataParallel": 2, "expertParallel": True},
    "batching": {"maxNumSeqs": {"min": 8, "max": 96}, "maxNumBatchedTokens": 4096},
}


def test_vllm_single_node_args(make_pool: Callable[..., InferencePool]) -> None:
    engine = containers(render_pool(make_pool(spec=VLLM_FULL), replicas=1, max_num_seqs=48))["single"]
    assert engine["command"] == ["vllm", "serve"]
    assert engine["args"][0] == "org/moe"
    got = flags(engine["args"])
    assert got == {
        "--served-model-name": "chat", "--host": "0.0.0.0", "--port": "8000",
        "--tensor-parallel-size": "2", "--pipeline-parallel-size": "2", "--data-parallel-size": "2",
        "--enable-expert-parallel": None, "--max-num-seqs": "48", "--max-num-batched-tokens": "4096",
        "--max-model-len": "16384", "--quantization": "fp8", "--kv-cache-dtype": "fp8",
        "--no-enable-prefix-caching": None, "--speculative-config": got["--speculative-config"],
    }
    assert json.loads(got["--speculative-config"] or "") == {
        "method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_max": 3}
    assert "--disable-log-stats" not in engine["args"]  # metrics stay on


def test_vllm_defaults_batch_limit_and_extra_args_last(make_pool: Callable[..., InferencePool]) -> None:
    pool = make_pool(spec={"engine": {"extraArgs": ["--seed", "1"]}, "batching": {"maxNumSeqs": {"max": 77}}})
    args = containers(render_pool(pool, replicas=1))["single"]["args"]
    assert flags(args)["--max-num-seqs"] == "77"
    assert flags(args)["--enable-prefix-caching"] is None
    assert "--quantization" not in args
    assert args[-2:] == ["--seed", "1"]


def test_vllm_leaves_the_kernel_of_awq_and_gptq_checkpoints_to_vllm(make_pool: Callable[..., InferencePool]) -> None:
    # '--quantization awq' (or 'gptq') would force the slow kernel instead of the Marlin one vLLM picks itself.
    for quantization in ("awq", "gptq"):
        args = containers(render_pool(make_pool(spec={"model": {"quantization": quantization}}), replicas=1))["single"]["args"]
        assert "--quantization" not in args and quantization not in args


def test_vllm_draft_and_eagle_speculative_config(make_pool: Callable[..., InferencePool]) -> None:
    for method, expected in (("draft", {}), ("eagle", {"method": "eagle"})):
        pool = make_pool(spec={"engine": {"speculative": {"method": method, "model": "org/d", "numSpeculativeTokens": 2}}})
        args = containers(render_pool(pool, replicas=1))["single"]["args"]
        config = json.loads(flags(args)["--speculative-config"] or "")
        assert config == {"model": "org/d", "num_speculative_tokens": 2, **expected}


def test_vllm_multi_node_group(make_pool: Callable[..., InferencePool]) -> None:
    pool = make_pool(spec={"model": {"architecture": "moe"},
                           "topology": {"tensorParallel": 8, "pipelineParallel": 2, "nodesPerReplica": 2,
                                        "expertParallel": True}})
    objects = render_pool(pool, replicas=3)
    lws = by_kind(objects, "LeaderWorkerSet")
    assert lws["spec"]["replicas"] == 3
    assert lws["spec"]["startupPolicy"] == "LeaderCreated"
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    assert lws["spec"]["leaderWorkerTemplate"]["restartPolicy"] == "RecreateGroupOnPodRestart"
    roles = containers(objects)
    for role, rank in (("leader", "0"), ("worker", "$(LWS_WORKER_INDEX)")):
        got = flags(roles[role]["args"])
        assert roles[role]["command"] == ["vllm", "serve"]
        assert got["--nnodes"] == "2" and got["--node-rank"] == rank
        assert got["--master-addr"] == "$(LWS_LEADER_ADDRESS)"
        assert got["--distributed-executor-backend"] == "mp"
        assert roles[role]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert "--headless" in roles["worker"]["args"] and "--headless" not in roles["leader"]["args"]
    assert "ports" in roles["leader"] and "ports" not in roles["worker"]


def test_trtllm_args_and_options_file(make_pool: Callable[..., InferencePool]) -> None:
    spec = {
        "model": {"architecture": "moe", "quantization": "fp8", "maxContextTokens": 4096},
        "engine": {"kind": "trtllm", "kvCacheDtype": "fp8",
                   "speculative": {"method": "eagle", "model": "org/eagle", "numSpeculativeTokens": 3}},
        "topology": {"tensorParallel": 2, "expertParallel": True},
        "batching": {"maxNumBatchedTokens": 2048},
    }
    objects = render_pool(make_pool(spec=spec), replicas=2, max_num_seqs=40)
    engine = containers(objects)["single"]
    assert engine["command"] == ["trtllm-serve"]
    assert engine["args"][0] == "org/model"
    got = flags(engine["args"])
    assert {k: got[k] for k in ("--tp_size", "--pp_size", "--ep_size", "--max_batch_size", "--max_num_tokens",
                                "--max_seq_len", "--backend")} == {
        "--tp_size": "2", "--pp_size": "1", "--ep_size": "2", "--max_batch_size": "40",
        "--max_num_tokens": "2048", "--max_seq_len": "4096", "--backend": "pytorch"}
    config_map = by_kind(objects, "ConfigMap")
    path = got["--extra_llm_api_options"] or ""
    mount = next(m for m in engine["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volumes = by_kind(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert next(v for v in volumes if v["name"] == mount["name"])["configMap"]["name"] == config_map["metadata"]["name"]
    options = yaml.safe_load(config_map["data"][path.rsplit("/", 1)[1]])
    assert options["kv_cache_config"]["dtype"] == "fp8"
    assert 0 < options["kv_cache_config"]["free_gpu_memory_fraction"] < 1
    assert options["speculative_config"] == {
        "decoding_type": "Eagle", "max_draft_len": 3, "speculative_model_dir": "org/eagle"}
    monitor = by_kind(objects, "PodMonitor")["spec"]["podMetricsEndpoints"][0]
    assert monitor["path"] == "/prometheus/metrics"


def test_trtllm_serves_a_served_name_on_images_that_take_the_flag(
    make_pool: Callable[..., InferencePool],
) -> None:
    def args(image: str | None, served: str | None = "chat") -> list[str]:
        spec = {"model": {"servedName": served}, "engine": {"kind": "trtllm", "image": image}}
        return containers(render_pool(make_pool(spec=spec), replicas=1))["single"]["args"]  # type: ignore[no-any-return]

    for image in ("nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc7", "nvcr.io/nvidia/tensorrt-llm/release:1.4.0",
                  "registry.local/our-trtllm:latest"):
        assert flags(args(image))["--served_model_name"] == "chat", image
    assert "--served_model_name" not in flags(args(None, served=None))


def test_trtllm_options_change_rolls_the_pods(make_pool: Callable[..., InferencePool]) -> None:
    def template(spec: dict[str, Any]) -> dict[str, Any]:
        objects = render_pool(make_pool(spec={"engine": {"kind": "trtllm", **spec}}), replicas=1)
        return by_kind(objects, "Deployment")["spec"]["template"]  # type: ignore[no-any-return]

    assert template({"kvCacheDtype": "fp8"}) != template({"kvCacheDtype": "auto"})
    assert template({"kvCacheDtype": "fp8"}) == template({"kvCacheDtype": "fp8"})


def test_max_num_seqs_lives_in_the_pod_template(make_pool: Callable[..., InferencePool]) -> None:
    for kind in ("vllm", "trtllm"):
        pool = make_pool(spec={"engine": {"kind": kind}})
        small, large = (by_kind(render_pool(pool, replicas=1, max_num_seqs=n), "Deployment") for n in (16, 32))
        assert small["spec"]["template"] != large["spec"]["template"]


def test_trtllm_multi_node_is_one_mpi_world(make_pool: Callable[..., InferencePool]) -> None:
    pool = make_pool(spec={"engine": {"kind": "trtllm"}, "topology": {"tensorParallel": 16, "nodesPerReplica": 2}})
    roles = containers(render_pool(pool, replicas=1))
    leader, worker = roles["leader"], roles["worker"]
    assert leader["command"][:2] == ["/bin/sh", "-c"] and "mpirun" in leader["command"][2]
    assert leader["args"][:2] == ["trtllm-llmapi-launch", "trtllm-serve"] and flags(leader["args"])["--tp_size"] == "16"
    env = {e["name"]: e.get("value") for e in leader["env"]}
    assert env["INFERENCEFLEET_WORLD_SIZE"] == "16" and env["INFERENCEFLEET_GPUS_PER_NODE"] == "8"
    assert "sshd" in worker["command"][2] and worker["args"] == []
    assert any(m["mountPath"] == "/root/.ssh" for m in worker["volumeMounts"])
