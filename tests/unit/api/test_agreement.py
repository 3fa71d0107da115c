"""The pydantic models and the generated CRD schema (jsonschema + CEL) accept and reject the same objects."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from inferencefleet.api.crdgen import POSITIVE_DURATION_PATTERN, openapi_schema
from inferencefleet.api.durations import PATTERN
from inferencefleet.api.v1alpha1 import FleetQuota, InferencePool

S = "spec."
# (path, value, valid): a valid base object plus one mutation each, GIE style.
POOL_MUTATIONS: list[tuple[str, Any, bool]] = [
    (S + "tier", "standard", True),
    (S + "tier", "", False),
    (S + "tier", "Premium", False),
    (S + "tier", "a" * 64, False),
    (S + "tier", 7, False),
    (S + "model.name", "", False),
    (S + "model.uri", "s3://bucket/llama", True),
    (S + "model.uri", "http://example.com/llama", False),
    (S + "model.architecture", "moe", True),
    (S + "model.architecture", "sparse", False),
    (S + "model.quantization", "int4", False),
    (S + "model.maxContextTokens", 127, False),
    (S + "model.maxContextTokens", 1048576, True),
    (S + "model.maxContextTokens", "8192", False),
    (S + "model.maxContextTokens", 8192.0, False),
    (S + "model.parametersBillions", 0, False),
    (S + "model.parametersBillions", 0.5, True),
    (S + "model.parametersBillions", 70, True),
    (S + "engine.kind", "trtllm", True),
    (S + "engine.kind", "tgi", False),
    (S + "engine.prefixCaching", "yes", False),
    (S + "engine.prefixCaching", 1, False),
    (S + "engine.extraArgs", ["--enforce-eager"], True),
    (S + "engine.extraArgs", ["x"] * 65, False),
    (S + "engine.extraArgs", [3], False),
    (S + "engine.env", {"VLLM_LOGGING_LEVEL": "DEBUG"}, True),
    (S + "engine.env", {"A": 1}, False),
    (S + "engine.env", {"A=B": "1"}, False),
    (S + "engine.env", {"1A": "1"}, False),
    (S + "engine.env", {"_a.b-c": "1"}, True),
    (S + "pod.labels", {"bad key!": "x"}, False),
    (S + "pod.labels", {"example.com/team": "a-b.c_d"}, True),
    (S + "pod.labels", {"example.com/": "a"}, False),
    (S + "pod.labels", {"Example.com/team": "a"}, False),
    (S + "pod.labels", {"a" * 64: "a"}, False),
    (S + "pod.labels", {"a" * 63: "a" * 63}, True),
    (S + "pod.labels", {"b." * 126 + "c/x": "a"}, True),  # a prefix of 253 characters
    (S + "pod.labels", {"b." * 127 + "c/x": "a"}, False),
    (S + "pod.labels", {"team": "bad value!"}, False),
    (S + "pod.labels", {"team": "a" * 64}, False),
    (S + "pod.labels", {"team": ""}, True),
    (S + "pod.annotations", {"-x": "y"}, False),
    (S + "pod.annotations", {"example.com/note": "any text at all!"}, True),
    (S + "topology.gpu.nodeSelector", {"bad key!": "x"}, False),
    (S + "engine.port", 0, False),
    (S + "engine.speculative", {"method": "eagle", "model": "yuhuili/EAGLE-LLaMA3-Instruct-70B"}, True),
    (S + "engine.speculative", {"method": "draft"}, False),
    (S + "engine.speculative", {"method": "medusa"}, False),
    (S + "engine.speculative", {"method": "ngram", "numSpeculativeTokens": 17}, False),
    (S + "engine.speculative", None, True),
    (S + "engine", None, True),
    (S + "engine.kvCacheDtype", "fp16", False),
    (S + "topology.tensorParallel", 0, False),
    (S + "topology.tensorParallel", 8, True),
    (S + "topology.gpusPerReplica", 4, True),
    (S + "topology.gpusPerReplica", 8, False),
    (S + "topology.nodesPerReplica", 2, True),
    (S + "topology.nodesPerReplica", 3, False),
    (S + "topology.expertParallel", True, False),
    (S + "topology.gpu.gpusPerNode", 65, False),
    (S + "topology.gpu.nodeSelector", {"pool": "gpu"}, True),
    (S + "replicas.min", 13, False),
    (S + "replicas.min", 0, True),
    (S + "replicas.max", 0, False),
    (S + "replicas.count", 3, False),
    (S + "replicas.unknown", 3, False),
    (S + "autoscaling.mode", "External", True),
    (S + "autoscaling.mode", False, False),
    (S + "autoscaling.mode", "Auto", False),
    (S + "autoscaling.slo.ttftP99", "1m30s", True),
    (S + "autoscaling.slo.ttftP99", "1h", True),
    (S + "autoscaling.slo.ttftP99", "1h0.5s", False),
    (S + "autoscaling.slo.itlP99", "61m", False),
    (S + "autoscaling.slo.ttftP99", "0.5s", True),
    (S + "autoscaling.slo.ttftP99", "0s", False),
    (S + "autoscaling.slo.ttftP99", "0.000ms", False),
    (S + "autoscaling.slo.ttftP99", "800", False),
    (S + "autoscaling.slo.ttftP99", 0.8, False),
    (S + "autoscaling.slo.ttftP99", "1s\n", False),
    (S + "autoscaling.slo.itlP99", "-5ms", False),
    (S + "autoscaling.behavior.scaleDownDelay", "0s", True),
    (S + "autoscaling.behavior.tolerance", 1.5, False),
    (S + "autoscaling.behavior.targetUtilization", 0, False),
    (S + "autoscaling.behavior.targetUtilization", 1, True),
    (S + "autoscaling.scaleToZero", {"idleAfter": "15m"}, False),
    (S + "autoscaling.coldStart", "10m", True),
    (S + "autoscaling.coldStart", "60m", True),
    (S + "autoscaling.coldStart", "3600.001s", False),
    (S + "autoscaling.coldStart", "99999999999h", False),
    (S + "batching.mode", "Dynamic", False),
    (S + "batching.maxNumSeqs", {"min": 300, "max": 200}, False),
    (S + "batching.maxNumSeqs", {"min": 300}, False),
    (S + "batching.maxNumSeqs", {"max": 4}, False),
    (S + "batching.maxNumSeqs", {"max": 4096}, True),
    (S + "batching.maxNumBatchedTokens", 63, False),
    (S + "pod.cache", {"kind": "hostPath", "path": "/mnt/models"}, True),
    (S + "pod.cache", {"kind": "hostPath", "path": "mnt"}, False),
    (S + "pod.cache", {"kind": "hostPath"}, False),
    (S + "pod.cache", {"kind": "emptyDir", "sizeLimit": "200Gi"}, True),
    (S + "pod.cache", {"kind": "emptyDir", "sizeLimit": "200GB"}, False),
    (S + "pod.cpu", "500m", True),
    (S + "pod.cpu", "half", False),
    (S + "pod.tolerations", [], True),
    (S + "pod.tolerations", [{"key": "a", "operator": "Sometimes"}], False),
    (S + "pod.hfTokenSecretRef", {"name": "HF"}, False),
    (S + "pod.hfTokenSecretRef", {"key": "token"}, False),
    (S + "capacity", {"decodeBaseMs": 6.5, "kvCacheTokens": 500000}, True),
    (S + "capacity", {"decodeBaseMs": 0}, False),
    (S + "capacity", {"kvCacheTokens": 0}, False),
    (S + "capacity", {"kvCacheTokens": 2**63 - 1}, True),
    (S + "capacity", {"kvCacheTokens": 2**63}, False),
    (S + "capacity", {"prefillTokensPerSecond": float("inf")}, False),
    (S + "capacity", {"loadTest": {"requestsPerSecond": 0.81, "promptTokens": 5400, "outputTokens": 310}}, True),
    (S + "capacity", {"loadTest": {"requestsPerSecond": 0, "promptTokens": 5400, "outputTokens": 310}}, False),
    (S + "capacity", {"loadTest": {"requestsPerSecond": 1, "promptTokens": 0, "outputTokens": 310}}, False),
    (S + "capacity", {"loadTest": {"requestsPerSecond": 1, "promptTokens": 16000}}, False),
    (S + "capacity", {"loadTest": {"requestsPerSecond": 1, "promptTokens": 16000, "outputTokens": 385}}, False),
    (S + "capacity", {"loadTest": {"requestsPerSecond": 1, "promptTokens": 16000, "outputTokens": 384}}, True),
    (S + "pod.tolerations", [{"key": "a", "operator": "Exists", "tolerationSeconds": -(2**63) - 1}], False),
    (S + "quotaRef", "Default", False),
    ("spec.model", None, False),
    ("metadata.name", "a" + "-b" * 31, True),
    ("metadata.name", "a" * 64, False),
    ("metadata.name", "llama3.1-8b", False),
    ("metadata.name", "8b-llama", False),
    ("metadata.labels", {"team": "search"}, True),
    (
        "status",
        {
            "readyReplicas": 2,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "AllReady",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                }
            ],
        },
        True,
    ),
    (
        "status",
        {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "Maybe",
                    "reason": "X",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                }
            ]
        },
        False,
    ),
    ("status", {"decisions": [{"time": "t", "action": "ScaleUp", "reason": "r", "from": 1, "to": 2}]}, True),
    ("status", {"decisions": [{"time": "t", "action": "a", "reason": "r"}] * 6}, False),
    ("status", {"replicas": 2**64}, False),
    ("status", {"signals": {"waiting": float("nan")}}, False),
    ("status", {"cost": {"dollarsPerHour": float("-inf")}}, False),
    ("status", {"cost": {"dollarsPerHour": 10**400}}, False),
    ("status", {"cost": {"dollarsPerHour": 10**30}}, True),
]


@pytest.mark.parametrize(
    ("path", "value", "valid"), POOL_MUTATIONS, ids=[f"{p}={v!r}"[:60] for p, v, _ in POOL_MUTATIONS]
)
def test_pool_mutation_is_judged_alike(base_pool, mutate, verdicts, path, value, valid):
    models_ok, schema_ok, why = verdicts(mutate(base_pool, path, value))
    assert (models_ok, schema_ok) == (valid, valid), why


def test_pool_without_optional_blocks_is_judged_alike(base_pool, mutate, verdicts):
    body = base_pool
    for block in ("engine", "topology", "replicas", "autoscaling", "batching", "pod"):
        body = mutate(body, f"spec.{block}", None, delete=True)
    assert verdicts(body)[:2] == (True, True)


def test_pool_count_in_external_mode_is_judged_alike(base_pool, mutate, verdicts):
    body = mutate(mutate(base_pool, "spec.autoscaling.mode", "External"), "spec.replicas.count", 3)
    assert verdicts(body)[:2] == (True, True)
    assert verdicts(mutate(body, "spec.replicas.count", 13))[:2] == (False, False)


def test_scale_to_zero_with_min_zero_is_judged_alike(base_pool, mutate, verdicts):
    body = mutate(
        mutate(base_pool, "spec.autoscaling.scaleToZero", {"idleAfter": "15m"}), "spec.replicas.min", 0
    )
    assert verdicts(body)[:2] == (True, True)


def test_expert_parallel_on_moe_is_judged_alike(base_pool, mutate, verdicts):
    body = mutate(mutate(base_pool, "spec.topology.expertParallel", True), "spec.model.architecture", "moe")
    assert verdicts(body)[:2] == (True, True)


QUOTA_MUTATIONS: list[tuple[str, Any, bool]] = [
    (S + "gpuPrices", [], False),
    (S + "gpuPrices", [{"type": "H100-80GB", "dollarsPerHour": 3}], True),
    (S + "gpuPrices", [{"type": "H100-80GB", "dollarsPerHour": -1}], False),
    (S + "gpuPrices", [{"type": "A", "dollarsPerHour": 1}, {"type": "A", "dollarsPerHour": 2}], False),
    (S + "tiers", [{"name": "free", "priority": 1}, {"name": "free", "priority": 2}], False),
    (S + "tiers", [{"name": "free"}], False),
    (S + "tiers", [{"name": "free", "priority": 1, "guaranteed": {"gpus": 9}, "limit": {"gpus": 8}}], False),
    (S + "tiers", [{"name": "free", "priority": 1, "guaranteed": {"gpus": 8}, "limit": {"gpus": 8}}], True),
    (
        S + "tiers",
        [
            {
                "name": "free",
                "priority": 1,
                "guaranteed": {"dollarsPerHour": 3},
                "limit": {"dollarsPerHour": 2.5},
            }
        ],
        False,
    ),
    (
        S + "tiers",
        [
            {
                "name": "free",
                "priority": 1,
                "guaranteed": {"dollarsPerHour": 2},
                "limit": {"dollarsPerHour": 2.5},
            }
        ],
        True,
    ),
    (
        S + "tiers",
        [{"name": "free", "priority": 1, "guaranteed": {"gpus": 9}, "limit": {"dollarsPerHour": 1}}],
        True,
    ),
    (S + "limits", {"gpus": -1}, False),
    (S + "limits", {}, True),
    (S + "tiers", [], False),
    ("metadata.name", "fleet.default", True),
    ("metadata.name", "Default", False),
]


@pytest.mark.parametrize(
    ("path", "value", "valid"), QUOTA_MUTATIONS, ids=[f"{p}={v!r}"[:60] for p, v, _ in QUOTA_MUTATIONS]
)
def test_quota_mutation_is_judged_alike(base_quota, mutate, verdicts, path, value, valid):
    models_ok, schema_ok, why = verdicts(mutate(base_quota, path, value))
    assert (models_ok, schema_ok) == (valid, valid), why


# ---------------------------------------------------------------- generated mutations
def _leaves(schema: dict[str, Any], prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """Every property path under ``schema`` with its schema (objects and their children both)."""
    found = []
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        found.append((path, sub))
        found.extend(_leaves(sub, path))
    return found


POOL_LEAVES = _leaves(openapi_schema(InferencePool)["properties"]["spec"], "spec")
QUOTA_LEAVES = _leaves(openapi_schema(FleetQuota)["properties"]["spec"], "spec")
WRONG_TYPES = st.sampled_from(
    [None, "7", 7, -1, 2.5, 2**63, float("nan"), True, False, [], {}, ["x"], {"a": "b"}]
)
DURATIONS = st.sampled_from(["0s", "0.0ms", "1s", "800ms", "1h30m", "1.5m", "5", "2x", "00010us", "0.001ns"])
STRINGS = st.sampled_from(
    ["", "a", "A", "free", "hf://org/model", "/mnt", "100Gi", "8", "500m", "x" * 64]
) | st.text(max_size=6)


def _value_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Plausible values (in range, at and beyond the bounds) and wrong types for one schema node."""
    kind = schema.get("type")
    if "enum" in schema:
        typed = st.sampled_from([*schema["enum"], "Bogus", ""])
    elif kind == "integer":
        low, high = schema.get("minimum", -5), schema.get("maximum", 10**6)
        typed = st.integers(low - 2, low + 20) | st.integers(max(low, high - 2), high + 2)
    elif kind == "number":
        typed = st.floats(-1, float(schema.get("maximum", 100)) * 1.5, allow_nan=False) | st.integers(-1, 100)
    elif kind == "boolean":
        typed = st.booleans()
    elif schema.get("pattern") in (PATTERN, POSITIVE_DURATION_PATTERN):
        typed = DURATIONS
    elif kind == "string":
        typed = STRINGS
    elif kind == "array":
        typed = st.lists(_value_for(schema.get("items", {})), max_size=3)
    elif kind == "object" and "properties" in schema:
        typed = st.fixed_dictionaries(
            {}, optional={name: _value_for(sub) for name, sub in list(schema["properties"].items())[:4]}
        )
    else:
        typed = st.dictionaries(st.sampled_from(["a", "b"]), STRINGS, max_size=2)
    return typed | WRONG_TYPES


GENERATED = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _mutations(data: st.DataObject, leaves: list[tuple[str, dict[str, Any]]], body: dict[str, Any], mutate):
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path, schema = data.draw(st.sampled_from(leaves), label="path")
        body = mutate(body, path, data.draw(_value_for(schema), label=path))
    return body


@GENERATED
@given(data=st.data())
def test_generated_pool_mutations_are_judged_alike(base_pool, mutate, verdicts, data):
    models_ok, schema_ok, why = verdicts(_mutations(data, POOL_LEAVES, base_pool, mutate))
    event("accepted" if models_ok else "rejected")
    assert models_ok == schema_ok, why


@GENERATED
@given(data=st.data())
def test_generated_quota_mutations_are_judged_alike(base_quota, mutate, verdicts, data):
    models_ok, schema_ok, why = verdicts(_mutations(data, QUOTA_LEAVES, base_quota, mutate))
    event("accepted" if models_ok else "rejected")
    assert models_ok == schema_ok, why
