"""Infeasible pools fail with one clear line: the field, what was wrong and what is allowed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.cli import main
from inferencefleet.render.errors import RenderError
from inferencefleet.render.options import RenderOptions
from inferencefleet.render.workloads import render_pool

CASES: list[tuple[str, dict[str, Any], RenderOptions, str, list[str]]] = [
    ("GPUs per node above the node size", {"topology": {"tensorParallel": 16}}, RenderOptions(),
     "spec.topology", ["16 GPUs", "a node has 8", "at most 8"]),
    ("node size set by the operator", {"topology": {"tensorParallel": 4}}, RenderOptions(node_gpus=2),
     "spec.topology", ["4 GPUs", "a node has 2"]),
    ("tensor parallel straddling nodes",
     {"topology": {"tensorParallel": 4, "pipelineParallel": 3, "nodesPerReplica": 2}}, RenderOptions(),
     "spec.topology.tensorParallel", ["6 GPUs", "divisor or a multiple of 6"]),
    ("gptq on TensorRT-LLM", {"model": {"quantization": "gptq"}, "engine": {"kind": "trtllm"}}, RenderOptions(),
     "spec.model.quantization", ["'gptq'", "'trtllm'", "none, awq, fp8"]),
    ("data parallel on a dense TensorRT-LLM model", {"engine": {"kind": "trtllm"}, "topology": {"dataParallel": 2}},
     RenderOptions(), "spec.topology.dataParallel", ["'moe'", "dataParallel 1"]),
    ("data parallel on a multi-node vLLM group",
     {"topology": {"tensorParallel": 8, "dataParallel": 2, "nodesPerReplica": 2}}, RenderOptions(),
     "spec.topology.dataParallel", ["nodesPerReplica 2", "dataParallel 1"]),
    ("weights from s3", {"model": {"uri": "s3://bucket/llama"}}, RenderOptions(),
     "spec.model.uri", ["'s3://'", "hf://, pvc://"]),
    ("hf uri the engine would parse as a flag", {"model": {"uri": "hf://--enforce-eager"}}, RenderOptions(),
     "spec.model.uri", ["'--enforce-eager'", "starts with '-'"]),
    ("served name on a TensorRT-LLM image without --served_model_name",
     {"model": {"servedName": "chat"}, "engine": {"kind": "trtllm"}}, RenderOptions(),
     "spec.engine.image", ["'nvcr.io/nvidia/tensorrt-llm/release:1.0.0'", "'chat'", "1.3.0rc7 or later"]),
    ("served name on an operator-configured pre-1.3.0rc7 image",
     {"model": {"servedName": "chat"}, "engine": {"kind": "trtllm"}},
     RenderOptions(images={"trtllm": "registry:5000/trt/release:1.3.0rc6.post1@sha256:ab"}),
     "spec.engine.image", ["1.3.0rc6.post1", "needs to serve 'chat'"]),
]

DUPLICATES = [
    ("vllm", "--max-num-seqs=64", "max-num-seqs"),
    ("vllm", "--max_num_seqs", "max-num-seqs"),
    ("vllm", "-tp", "tensor-parallel-size"),
    ("vllm", "--no-enable-prefix-caching", "enable-prefix-caching"),
    ("vllm", "--disable-log-stats", "disable-log-stats"),
    ("vllm", "--speculative-config {}", "speculative-config"),
    ("vllm", "--speculative-config.num_speculative_tokens=2", "speculative-config"),
    ("trtllm", "--tp_size", "tp-size"),
    ("trtllm", "--tensor_parallel_size=4", "tp-size"),
    ("trtllm", "--moe_expert_parallel_size", "ep-size"),
    ("trtllm", "--config", "extra-llm-api-options"),
    ("trtllm", "--kv_cache_free_gpu_memory_fraction=0.5", "kv-cache-free-gpu-memory-fraction"),
    ("trtllm", "--free_gpu_memory_fraction", "kv-cache-free-gpu-memory-fraction"),
    ("trtllm", "--kv_cache_dtype", "kv-cache-dtype"),
]


@pytest.mark.parametrize(("what", "spec", "options", "field", "phrases"), CASES, ids=[c[0] for c in CASES])
def test_infeasible_spec(
    what: str, spec: dict[str, Any], options: RenderOptions, field: str, phrases: list[str],
    make_pool: Callable[..., InferencePool],
) -> None:
    with pytest.raises(RenderError) as caught:
        render_pool(make_pool(spec=spec), replicas=1, options=options)
    assert caught.value.field == field
    assert "\n" not in str(caught.value)
    for phrase in phrases:
        assert phrase in str(caught.value)


@pytest.mark.parametrize(("kind", "arg", "managed"), DUPLICATES, ids=[d[1] for d in DUPLICATES])
def test_extra_args_that_duplicate_a_managed_flag(
    kind: str, arg: str, managed: str, make_pool: Callable[..., InferencePool]
) -> None:
    pool = make_pool(spec={"engine": {"kind": kind, "extraArgs": ["--seed", "3", arg]}})
    with pytest.raises(RenderError) as caught:
        render_pool(pool, replicas=1)
    assert caught.value.field == "spec.engine.extraArgs[2]"
    assert f"managed flag '--{managed}'" in str(caught.value)


@pytest.mark.parametrize("arg", ["--seed", "-1", "--enable-chunked-prefill", "--max-num-seqsx"])
def test_unmanaged_extra_args_are_accepted(arg: str, make_pool: Callable[..., InferencePool]) -> None:
    pool = make_pool(spec={"engine": {"extraArgs": [arg]}})
    assert render_pool(pool, replicas=1)


def test_bad_operator_inputs(make_pool: Callable[..., InferencePool]) -> None:
    with pytest.raises(RenderError, match="replicas: must be 0 or more"):
        render_pool(make_pool(), replicas=-1)
    with pytest.raises(RenderError, match="maxNumSeqs: must be 1 or more"):
        render_pool(make_pool(), replicas=1, max_num_seqs=0)


def write_pool(tmp_path: Path, spec_yaml: str) -> str:
    path = tmp_path / "pool.yaml"
    path.write_text(
        "apiVersion: inferencefleet.io/v1alpha1\nkind: InferencePool\n"
        "metadata: {name: p, namespace: ns}\nspec:\n  model: {name: org/m}\n"
        + ("" if "  tier:" in spec_yaml else "  tier: free\n") + spec_yaml
    )
    return str(path)


CLI_CASES = [
    ("expert parallel on a dense model", "  topology: {expertParallel: true}\n", [],
     ["topology.expertParallel", "architecture 'moe'"]),
    ("parallel degrees that do not multiply to the GPUs",
     "  topology: {tensorParallel: 2, pipelineParallel: 2, gpusPerReplica: 8}\n", [],
     ["gpusPerReplica", "must be equal"]),
    ("GPUs per node above --node-gpus", "  topology: {tensorParallel: 4}\n", ["--node-gpus", "2"],
     ["InferencePool ns/p: spec.topology:", "a node has 2"]),
    ("quota the pool does not draw from", "  quotaRef: other\n", ["--quota", "QUOTA"],
     ["spec.quotaRef", "'other' is not FleetQuota 'default'"]),
    ("tier missing from the quota", "", ["--quota", "QUOTA", "--replicas", "2"],
     ["spec.tier", "'free' is not a tier", "allowed: premium, standard"]),
    ("GPU type without a price", "  tier: premium\n  topology: {gpu: {type: L4}}\n", ["--quota", "QUOTA"],
     ["spec.topology.gpu.type", "'L4' has no price", "H100-80GB"]),
]


@pytest.mark.parametrize(("what", "spec_yaml", "flags", "phrases"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_reports_one_line(
    what: str, spec_yaml: str, flags: list[str], phrases: list[str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    quota = tmp_path / "quota.yaml"
    quota.write_text(
        "apiVersion: inferencefleet.io/v1alpha1\nkind: FleetQuota\nmetadata: {name: default}\nspec:\n"
        "  gpuPrices: [{type: H100-80GB, dollarsPerHour: 3}]\n"
        "  tiers: [{name: premium, priority: 100}, {name: standard, priority: 50}]\n"
    )
    argv = ["render", "-f", write_pool(tmp_path, spec_yaml), *(str(quota) if f == "QUOTA" else f for f in flags)]
    assert main(argv) == 1, "an invalid pool is exit status 1"
    captured = capsys.readouterr()
    assert captured.out == ""
    error = captured.err.strip()
    assert error.startswith("inferencefleet render: error:") and "Traceback" not in error
    for phrase in phrases:
        assert phrase in error


def test_cli_flags_reject_nonsense(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["render", "-f", write_pool(tmp_path, ""), "--replicas", "0"])
    assert exited.value.code == 2
    assert "--replicas: must be 1 or more, got 0" in capsys.readouterr().err
