"""The ``inferencefleet.io/v1alpha1`` API: InferencePool (namespaced) and FleetQuota (cluster-scoped).

These models are the single source of truth: ``crdgen`` turns them into the CRDs, the CLI
validates YAML with them, and the planner and renderer read them. Cross-field rules live twice
on purpose and are tested to agree: as pydantic validators (offline validation, clear errors)
and as CEL ``x-kubernetes-validations`` (enforced by the API server).
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic.config import JsonDict

from .base import ApiModel, cel, with_rules
from .conditions import Condition
from .durations import Duration

GROUP = "inferencefleet.io"
VERSION = "v1alpha1"
API_VERSION: Final = "inferencefleet.io/v1alpha1"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
Percent = Annotated[float, Field(ge=0, le=1)]

# Kubernetes' rules for map keys (k8s.io/apimachinery validation): '[.]' rather than a backslash, so the
# patterns read the same in Python, RE2 and a CEL string literal.
QUALIFIED_NAME = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
"""A label or annotation key: an optional DNS subdomain prefix and '/', then a name."""
QUALIFIED_LENGTHS = r"^([^/]{1,253}/)?[^/]{1,63}$"
"""A label or annotation key's lengths: a prefix of at most 253 characters, a name of at most 63."""
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
"""An environment variable name as the API server accepts it (letters, digits, '_', '-', '.'; no '=')."""


def _keys(patterns: tuple[str, ...], what: str, allowed: str) -> AfterValidator:
    """A validator refusing the first key of a map that does not match every one of ``patterns``."""
    compiled = [re.compile(pattern) for pattern in patterns]

    def check(value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not all(p.search(key) for p in compiled):
                raise ValueError(f"key {key[:80]!r} is not {what}: {allowed}")
        return value

    return AfterValidator(check)


def _key_rule(patterns: tuple[str, ...], message: str) -> JsonDict:
    """The same check as a CEL rule on the map, for the CRD."""
    matches = " && ".join(f"k.matches('{pattern}')" for pattern in patterns)
    return {"x-kubernetes-validations": [cel(f"self.all(k, {matches})", message)]}


_LABEL_KEY_HELP = ("an optional DNS subdomain prefix of at most 253 characters and '/', then a name of at most "
                   "63 characters: letters, digits, '-', '_' and '.', starting and ending with a letter or digit")
_QUALIFIED = (QUALIFIED_NAME, QUALIFIED_LENGTHS)
LabelMap = Annotated[
    dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]],
    Field(max_length=64, json_schema_extra=_key_rule(_QUALIFIED, f"keys must be label keys: {_LABEL_KEY_HELP}")),
    _keys(_QUALIFIED, "a label key", _LABEL_KEY_HELP),
]
"""Labels (pod labels, node selectors): Kubernetes label keys and values."""
AnnotationMap = Annotated[
    dict[str, Annotated[str, Field(max_length=253)]],
    Field(max_length=64, json_schema_extra=_key_rule(_QUALIFIED, f"keys must be annotation keys: {_LABEL_KEY_HELP}")),
    _keys(_QUALIFIED, "an annotation key", _LABEL_KEY_HELP),
]
_ENV_HELP = "letters, digits, '_', '-' and '.', not starting with a digit (no '=')"
EnvMap = Annotated[
    dict[str, Annotated[str, Field(max_length=253)]],
    Field(max_length=64, json_schema_extra=_key_rule((ENV_NAME,), f"keys must be environment variable names: {_ENV_HELP}")),
    _keys((ENV_NAME,), "an environment variable name", _ENV_HELP),
]
"""Environment variables: names as the API server accepts them."""


# ---------------------------------------------------------------- InferencePool spec
NOT_A_FLAG = r"^[^-]"
"""Names passed to the engine as arguments must not start with '-', or it would read them as flags."""


class ModelSpec(ApiModel):
    """The model to serve and where its weights come from."""

    name: str = Field(min_length=1, max_length=256, pattern=NOT_A_FLAG)
    """Model identifier, e.g. a Hugging Face repo id such as 'meta-llama/Llama-3.1-8B-Instruct'."""
    uri: str | None = Field(default=None, max_length=1024, pattern=r"^(hf|pvc|s3|gs|oci)://.+$")
    """Where the weights are: 'hf://org/name', 'pvc://claim/path', 's3://bucket/path', 'gs://...' or 'oci://...'. Defaults to hf://<name>."""
    servedName: str | None = Field(default=None, min_length=1, max_length=256, pattern=NOT_A_FLAG)
    """Name clients use in the OpenAI API 'model' field. Defaults to the model name. On trtllm, a name other than the model path needs TensorRT-LLM 1.3.0rc7 or later (--served_model_name)."""
    architecture: Literal["dense", "moe"] = "dense"
    """'dense' or 'moe' (Mixture-of-Experts). Expert parallelism requires 'moe'."""
    quantization: Literal["none", "awq", "gptq", "fp8"] = "none"
    """Weight quantization: 'none', 'awq', 'gptq' or 'fp8'."""
    maxContextTokens: int = Field(default=8192, ge=128, le=1048576)
    """Longest prompt plus output the engine accepts (vLLM --max-model-len)."""
    parametersBillions: float | None = Field(default=None, gt=0, le=10000)
    """Total parameters in billions; picks the capacity profile when the name does not."""


class SpeculativeSpec(ApiModel):
    """Speculative decoding. 'draft' and 'eagle' need a draft model; 'ngram' does not."""

    method: Literal["ngram", "eagle", "draft"]
    """'ngram' (prompt lookup), 'eagle' or 'draft' (a smaller draft model)."""
    model: str | None = Field(default=None, min_length=1, max_length=256, pattern=NOT_A_FLAG)
    """Draft or EAGLE head model id; required for 'eagle' and 'draft'."""
    numSpeculativeTokens: int = Field(default=4, ge=1, le=16)
    """Tokens proposed per step."""
    promptLookupMax: int | None = Field(default=None, ge=1, le=16)
    """ngram only: longest n-gram to match in the prompt."""

    model_config = with_rules(
        cel(
            "self.method == 'ngram' || has(self.model)",
            "speculative.model is required when method is 'eagle' or 'draft'",
            ".model",
        ),
    )

    @model_validator(mode="after")
    def _draft_needs_model(self) -> SpeculativeSpec:
        if self.method != "ngram" and self.model is None:
            raise ValueError(f"model: is required when method is '{self.method}' ('ngram' needs no model)")
        return self


class EngineSpec(ApiModel):
    """The serving engine and its options."""

    kind: Literal["vllm", "trtllm"] = "vllm"
    """'vllm' (vllm serve) or 'trtllm' (TensorRT-LLM trtllm-serve)."""
    image: str | None = Field(default=None, min_length=1, max_length=512)
    """Container image; defaults to the engine's release image pinned by this operator version."""
    extraArgs: list[Annotated[str, Field(max_length=4096)]] = Field(default_factory=list, max_length=64)
    """Extra command-line arguments appended after the managed ones; managed flags are refused."""
    speculative: SpeculativeSpec | None = None
    """Speculative decoding; off when absent."""
    prefixCaching: bool = True
    """Reuse KV cache across requests that share a prompt prefix."""
    kvCacheDtype: Literal["auto", "fp8"] = "auto"
    """KV-cache element type: 'auto' (model dtype) or 'fp8' (twice the tokens per GB)."""
    port: int = Field(default=8000, ge=1, le=65535)
    """Container port of the OpenAI-compatible API (and metrics)."""
    env: EnvMap = Field(default_factory=dict)
    """Extra environment variables for the engine container."""


class GpuSpec(ApiModel):
    """The GPU each replica runs on."""

    type: str = Field(default="H100-80GB", min_length=1, max_length=63)
    """GPU type; must match a FleetQuota gpuPrices entry for cost and budgets, e.g. 'H100-80GB'."""
    resourceName: str = Field(default="nvidia.com/gpu", min_length=1, max_length=253)
    """Extended resource requested per pod."""
    product: str | None = Field(default=None, max_length=253)
    """Value of the node label nvidia.com/gpu.product to select nodes by (e.g. 'NVIDIA-H100-80GB-HBM3')."""
    nodeSelector: LabelMap = Field(default_factory=dict)
    """Extra node selector labels."""
    gpusPerNode: int = Field(default=8, ge=1, le=64)
    """GPUs available on one node; a replica's per-node GPU count must not exceed it."""


class TopologySpec(ApiModel):
    """How one replica is sharded across GPUs and nodes."""

    gpu: GpuSpec = Field(default_factory=GpuSpec)
    """GPU type and node placement."""
    tensorParallel: int = Field(default=1, ge=1, le=64)
    """Tensor-parallel degree."""
    pipelineParallel: int = Field(default=1, ge=1, le=64)
    """Pipeline-parallel degree."""
    dataParallel: int = Field(default=1, ge=1, le=64)
    """Data-parallel ranks inside one replica (attention DP for MoE)."""
    expertParallel: bool = False
    """Shard experts across the replica's GPUs (MoE only)."""
    nodesPerReplica: int = Field(default=1, ge=1, le=64)
    """Nodes per replica; more than 1 renders a LeaderWorkerSet group."""
    gpusPerReplica: int | None = Field(default=None, ge=1, le=4096)
    """Optional check value: when set it must equal tensorParallel x pipelineParallel x dataParallel."""

    model_config = with_rules(
        cel(
            "!has(self.gpusPerReplica) || self.gpusPerReplica == "
            "self.tensorParallel * self.pipelineParallel * self.dataParallel",
            "topology.gpusPerReplica must equal tensorParallel x pipelineParallel x dataParallel",
            ".gpusPerReplica",
        ),
        cel(
            "(self.tensorParallel * self.pipelineParallel * self.dataParallel) % self.nodesPerReplica == 0",
            "topology.nodesPerReplica must divide tensorParallel x pipelineParallel x dataParallel",
            ".nodesPerReplica",
        ),
    )

    @property
    def gpus(self) -> int:
        """GPUs per replica (tensor x pipeline x data parallel)."""
        return self.tensorParallel * self.pipelineParallel * self.dataParallel

    @property
    def gpus_per_node(self) -> int:
        """GPUs each pod of the replica requests."""
        return self.gpus // self.nodesPerReplica

    @model_validator(mode="after")
    def _consistent(self) -> TopologySpec:
        product = self.gpus
        if self.gpusPerReplica is not None and self.gpusPerReplica != product:
            raise ValueError(
                f"gpusPerReplica: is {self.gpusPerReplica} but tensorParallel x pipelineParallel x "
                f"dataParallel = {self.tensorParallel} x {self.pipelineParallel} x "
                f"{self.dataParallel} = {product}; they must be equal"
            )
        if product % self.nodesPerReplica:
            raise ValueError(
                f"nodesPerReplica: {self.nodesPerReplica} does not divide the {product} GPUs per "
                f"replica (tensorParallel x pipelineParallel x dataParallel); allowed values are "
                f"divisors of {product}"
            )
        return self


class ReplicasSpec(ApiModel):
    """Replica bounds. ``count`` is the /scale field, honoured only in External and Off modes."""

    min: int = Field(default=1, ge=0, le=10000)
    """Fewest replicas (0 allows scale to zero)."""
    max: int = Field(default=1, ge=1, le=10000)
    """Most replicas."""
    count: int | None = Field(default=None, ge=0, le=10000)
    """Desired replicas when autoscaling.mode is External (written by HPA/KEDA via /scale) or Off."""

    model_config = with_rules(
        cel("self.min <= self.max", "replicas.min must be less than or equal to replicas.max", ".min"),
    )

    @model_validator(mode="after")
    def _bounds(self) -> ReplicasSpec:
        if self.min > self.max:
            raise ValueError(f"min: {self.min} must be less than or equal to max ({self.max})")
        return self


class SloSpec(ApiModel):
    """p99 latency objectives the autoscaler and batching policy size against."""

    ttftP99: Duration = Field(default=1.0, gt=0, le=3600)
    """p99 time to first token, e.g. '800ms' (at most 1h)."""
    itlP99: Duration = Field(default=0.06, gt=0, le=3600)
    """p99 inter-token latency, e.g. '60ms' (at most 1h)."""


class ScaleToZeroSpec(ApiModel):
    """Remove every replica after a quiet period; wake on the first waiting request."""

    idleAfter: Duration = Field(default=900.0, gt=0, le=7 * 86400)
    """How long without requests before scaling to zero, e.g. '15m' (at most 168h, a week)."""


class BehaviorSpec(ApiModel):
    """How fast the autoscaler moves."""

    scaleDownDelay: Duration | None = None
    """Scale-down stabilization window: replicas are removed only down to the most the pool needed over this
    long (a rolling maximum, as in HPA's behavior.scaleDown). Unset: the pool's cold start, at least 2m
    (keeping an idle replica for one cold start costs what stopping and restarting it would)."""
    scaleUpLimit: int = Field(default=0, ge=0, le=10000)
    """Most replicas added per decision; 0 means no limit."""
    scaleDownLimit: int = Field(default=0, ge=0, le=10000)
    """Most replicas removed per decision; 0 (default) means no limit: down to the most the scale-down
    delay's window needed."""
    tolerance: float = Field(default=0.1, ge=0, le=1)
    """Scale-down dead band: no replica is removed while the ideal count is within this fraction below the
    current one. Scale-up has none: a replica short breaks the SLO for a cold start."""
    targetUtilization: float = Field(default=0.85, gt=0, le=1)
    """Share of a replica's SLO capacity planned to be used (headroom for bursts)."""


class AutoscalingSpec(ApiModel):
    """Who decides replicas and against which SLOs."""

    mode: Literal["Managed", "Shadow", "External", "Off"] = "Managed"
    """Managed: the operator scales. Shadow: decides and reports only. External: HPA/KEDA own /scale. Off: replicas.count."""
    slo: SloSpec = Field(default_factory=SloSpec)
    """Latency objectives."""
    coldStart: Duration = Field(default=120.0, gt=0, le=3600)
    """Expected time for a new replica to become ready (at most 1h); the measured value wins once seen."""
    scaleToZero: ScaleToZeroSpec | None = None
    """Scale to zero after idle; requires replicas.min 0."""
    behavior: BehaviorSpec = Field(default_factory=BehaviorSpec)
    """Speed limits and dead band."""


class MaxNumSeqsRange(ApiModel):
    """Range of the engine's concurrent sequence limit (vLLM --max-num-seqs)."""

    min: int = Field(default=8, ge=1, le=4096)
    """Smallest batch the adaptive policy may choose."""
    max: int = Field(default=256, ge=1, le=4096)
    """Largest batch; the value used in Fixed mode."""

    model_config = with_rules(
        cel(
            "self.min <= self.max",
            "batching.maxNumSeqs.min must be less than or equal to batching.maxNumSeqs.max",
            ".min",
        ),
    )

    @model_validator(mode="after")
    def _bounds(self) -> MaxNumSeqsRange:
        if self.min > self.max:
            raise ValueError(f"min: {self.min} must be less than or equal to max ({self.max})")
        return self


class BatchingSpec(ApiModel):
    """Batch limits: fixed, or tuned live against the ITL SLO."""

    mode: Literal["Fixed", "Adaptive"] = "Fixed"
    """Fixed: run at maxNumSeqs.max. Adaptive: the largest batch meeting the ITL SLO, within the range."""
    maxNumSeqs: MaxNumSeqsRange = Field(default_factory=MaxNumSeqsRange)
    """Concurrent sequence limit range."""
    maxNumBatchedTokens: int = Field(default=8192, ge=64, le=1048576)
    """Tokens per engine step (chunked-prefill budget)."""


class CacheVolumeSpec(ApiModel):
    """Where model weights are cached inside the pod."""

    kind: Literal["emptyDir", "pvc", "hostPath"] = "emptyDir"
    """'emptyDir' (per pod), 'pvc' (shared claim) or 'hostPath' (node-local disk)."""
    claimName: str | None = Field(default=None, min_length=1, max_length=253)
    """PVC name; required for 'pvc'."""
    path: str | None = Field(default=None, min_length=1, max_length=1024, pattern=r"^/")
    """Host path; required for 'hostPath'."""
    sizeLimit: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
    """emptyDir size limit, e.g. '200Gi'."""

    model_config = with_rules(
        cel(
            "self.kind != 'pvc' || has(self.claimName)",
            "cache.claimName is required when kind is 'pvc'",
            ".claimName",
        ),
        cel(
            "self.kind != 'hostPath' || has(self.path)",
            "cache.path is required when kind is 'hostPath'",
            ".path",
        ),
    )

    @model_validator(mode="after")
    def _source(self) -> CacheVolumeSpec:
        if self.kind == "pvc" and self.claimName is None:
            raise ValueError("claimName: is required when kind is 'pvc'")
        if self.kind == "hostPath" and self.path is None:
            raise ValueError("path: is required when kind is 'hostPath'")
        return self


class SecretKeyRef(ApiModel):
    """A key in a Secret of the pool's namespace."""

    name: Name
    """Secret name."""
    key: str = Field(default="token", min_length=1, max_length=253)
    """Key inside the Secret."""


class Toleration(ApiModel):
    """A pod toleration (core/v1 Toleration)."""

    key: str | None = Field(default=None, max_length=317)
    """Taint key the toleration applies to; empty with operator 'Exists' matches every taint."""
    operator: Literal["Exists", "Equal"] | None = None
    """'Exists' or 'Equal' (the default)."""
    value: str | None = Field(default=None, max_length=63)
    """Taint value to match when operator is 'Equal'."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to match: 'NoSchedule', 'PreferNoSchedule' or 'NoExecute'; empty matches all."""
    tolerationSeconds: int | None = None
    """For 'NoExecute': how long the pod stays bound after the taint appears; unset means forever."""


class PodSpec(ApiModel):
    """Pod-level details of every replica."""

    tolerations: list[Toleration] = Field(
        default_factory=lambda: [Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
        max_length=32,
    )
    """Tolerations; by default the usual nvidia.com/gpu taint is tolerated."""
    cache: CacheVolumeSpec = Field(default_factory=CacheVolumeSpec)
    """Model cache volume."""
    hfTokenSecretRef: SecretKeyRef | None = None
    """Secret holding the Hugging Face token (exposed as HF_TOKEN)."""
    cpu: str = Field(default="8", pattern=r"^[0-9]+(\.[0-9]+)?m?$")
    """CPU request per pod."""
    memory: str = Field(default="64Gi", pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
    """Memory request per pod."""
    serviceAccountName: str | None = Field(default=None, max_length=253)
    """Service account of the pods."""
    priorityClassName: str | None = Field(default=None, max_length=253)
    """Priority class of the pods."""
    terminationGracePeriodSeconds: int = Field(default=120, ge=0, le=3600)
    """Time in-flight streams get to finish on shutdown."""
    labels: LabelMap = Field(default_factory=dict)
    """Extra pod labels."""
    annotations: AnnotationMap = Field(default_factory=dict)
    """Extra pod annotations."""


class LoadTestSpec(ApiModel):
    """What one replica served within spec.autoscaling.slo in a load test of the engine as deployed (for
    example vLLM's benchmark_serving at rising request rates): the planner calibrates its capacity model to it."""

    requestsPerSecond: float = Field(gt=0, le=10000)
    """Highest request rate at which one replica kept p99 TTFT and p99 ITL within spec.autoscaling.slo, run
    with batching.maxNumSeqs.max."""
    promptTokens: int = Field(ge=1)
    """Mean prompt length of the load test's requests (tokens)."""
    outputTokens: int = Field(ge=1)
    """Mean output length of the load test's requests (tokens)."""


class CapacitySpec(ApiModel):
    """Override of the capacity model (per-replica step time and prefill speed). Unset fields come from the profile."""

    profile: str | None = Field(default=None, max_length=63)
    """Named profile, e.g. 'llama3-8b-h100-tp1'; chosen from model and topology when unset."""
    decodeBaseMs: float | None = Field(default=None, gt=0, le=10000)
    """Decode step time floor in milliseconds."""
    decodePerSequenceUs: float | None = Field(default=None, ge=0, le=100000)
    """Added step time per running sequence, in microseconds."""
    decodePerCachedTokenNs: float | None = Field(default=None, ge=0, le=100000)
    """Added step time per cached context token in the batch, in nanoseconds."""
    prefillTokensPerSecond: float | None = Field(default=None, gt=0)
    """Prefill throughput of one replica."""
    kvCacheTokens: int | None = Field(default=None, ge=1)
    """KV-cache capacity of one replica in tokens."""
    loadTest: LoadTestSpec | None = None
    """A measured SLO capacity of one replica: step and prefill times are scaled by one factor so that the
    model serves requestsPerSecond at the load test's lengths, and a margin for demand that climbs during a
    cold start is planned on top (see docs/tuning.md)."""


class InferencePoolSpec(ApiModel):
    """Desired state of a pool of identical inference replicas."""

    model: ModelSpec
    """The model to serve."""
    engine: EngineSpec = Field(default_factory=EngineSpec)
    """Serving engine."""
    topology: TopologySpec = Field(default_factory=TopologySpec)
    """GPUs and nodes per replica."""
    replicas: ReplicasSpec = Field(default_factory=ReplicasSpec)
    """Replica bounds."""
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec)
    """Autoscaling mode and SLOs."""
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    """Batch limits."""
    pod: PodSpec = Field(default_factory=PodSpec)
    """Pod-level details."""
    capacity: CapacitySpec | None = None
    """Capacity model override."""
    tier: Name
    """Tier of the FleetQuota named by quotaRef, e.g. 'free'."""
    quotaRef: Name = "default"
    """Name of the cluster-scoped FleetQuota this pool draws from."""

    model_config = with_rules(
        cel(
            "!self.topology.expertParallel || self.model.architecture == 'moe'",
            "topology.expertParallel requires model.architecture 'moe'",
            ".topology.expertParallel",
        ),
        cel(
            "!has(self.replicas.count) || self.autoscaling.mode in ['External', 'Off']",
            "replicas.count must only be set when autoscaling.mode is 'External' or 'Off'",
            ".replicas.count",
        ),
        cel(
            "!has(self.replicas.count) || (self.replicas.count >= self.replicas.min "
            "&& self.replicas.count <= self.replicas.max)",
            "replicas.count must be between replicas.min and replicas.max",
            ".replicas.count",
        ),
        cel(
            "!has(self.autoscaling.scaleToZero) || self.replicas.min == 0",
            "autoscaling.scaleToZero requires replicas.min 0",
            ".autoscaling.scaleToZero",
        ),
        cel(
            "!has(self.capacity) || !has(self.capacity.loadTest) || self.capacity.loadTest.promptTokens "
            "+ self.capacity.loadTest.outputTokens <= self.model.maxContextTokens",
            "capacity.loadTest promptTokens + outputTokens must fit model.maxContextTokens",
            ".capacity.loadTest",
        ),
    )

    @model_validator(mode="after")
    def _cross_field(self) -> InferencePoolSpec:
        if self.topology.expertParallel and self.model.architecture != "moe":
            raise ValueError(
                "topology.expertParallel: true requires model.architecture 'moe' "
                f"(got '{self.model.architecture}'); allowed: false for dense models"
            )
        count = self.replicas.count
        if count is not None:
            if self.autoscaling.mode not in ("External", "Off"):
                raise ValueError(
                    f"replicas.count: must only be set when autoscaling.mode is 'External' or 'Off' "
                    f"(mode is '{self.autoscaling.mode}', where the operator owns replicas)"
                )
            if not self.replicas.min <= count <= self.replicas.max:
                raise ValueError(
                    f"replicas.count: {count} must be between replicas.min ({self.replicas.min}) "
                    f"and replicas.max ({self.replicas.max})"
                )
        if self.autoscaling.scaleToZero is not None and self.replicas.min != 0:
            raise ValueError(f"autoscaling.scaleToZero: requires replicas.min 0 (got {self.replicas.min})")
        load_test = self.capacity.loadTest if self.capacity is not None else None
        if load_test is not None and load_test.promptTokens + load_test.outputTokens > self.model.maxContextTokens:
            raise ValueError(
                f"capacity.loadTest: promptTokens + outputTokens ({load_test.promptTokens} + "
                f"{load_test.outputTokens}) must fit model.maxContextTokens ({self.model.maxContextTokens})"
            )
        return self


# ---------------------------------------------------------------- InferencePool status
class SignalsStatus(ApiModel):
    """Coarse observations from the last tick (not a mirror of Prometheus)."""

    requestRate: float | None = None
    """Arrivals per second."""
    outputTokensPerSecond: float | None = None
    """Generated tokens per second."""
    waiting: float | None = None
    """Queued requests."""
    running: float | None = None
    """Requests in running batches."""
    kvCacheUsage: float | None = None
    """KV-cache use, 0..1, mean over replicas."""
    ttftP99: str | None = None
    """p99 time to first token, e.g. '812ms'."""
    itlP99: str | None = None
    """p99 inter-token latency, e.g. '41ms'."""
    at: str | None = None
    """When the signals were read (RFC 3339)."""


class CostStatus(ApiModel):
    """What the pool costs now, from ready GPUs and FleetQuota prices."""

    gpus: int | None = None
    """GPUs of ready replicas."""
    dollarsPerHour: float | None = None
    """GPU cost per hour."""
    dollarsPerMillionTokens: float | None = None
    """Cost per million output tokens at the current rate."""


class BatchingStatus(ApiModel):
    """Batch limit in force and the one the policy recommends."""

    maxNumSeqs: int | None = None
    """--max-num-seqs the pods run with."""
    recommendedMaxNumSeqs: int | None = None
    """Largest batch predicted to meet the ITL SLO."""
    reason: str | None = None
    """Why."""


class SizingStatus(ApiModel):
    """How the last written decision sized the pool: replicas needed = demand / (slo rate x target utilization /
    (headroom x climb margin)). Rates in req/s, lengths in tokens, rounded to three significant digits."""

    demand: float | None = None
    """Req/s planned for: max(arrivals bounded against spikes, forecast) + backlog (unset: signals missing)."""
    arrivals: float | None = None
    """Req/s arriving: completions plus the waiting queue's growth."""
    forecast: float | None = None
    """Forecast of the arrivals over the horizon."""
    backlog: float | None = None
    """Waiting requests drained over the horizon (req/s)."""
    horizon: str | None = None
    """How far ahead the plan looks: the measured cold start, else spec.autoscaling.coldStart."""
    trendWarming: bool | None = None
    """The pool's traffic is too young for the forecast to use a trend."""
    burstiness: float | None = None
    """Recent peak over mean demand (1: steady); lengthens the scale-down delay."""
    promptTokens: float | None = None
    """Mean prompt length sized for."""
    outputTokens: float | None = None
    """Mean output length sized for."""
    stepMultiplier: float | None = None
    """Learned correction of the modelled decode step (from observed p99 ITL)."""
    prefillMultiplier: float | None = None
    """Learned correction of the modelled prefill time (from observed p99 TTFT)."""
    batch: int | None = None
    """Concurrency per replica within the ITL SLO."""
    sloRate: float | None = None
    """Req/s one replica serves within both SLOs."""
    targetUtilization: float | None = None
    """spec.autoscaling.behavior.targetUtilization."""
    headroom: float | None = None
    """SLO headroom dividing the rate per replica after observed p99s above the SLOs (1: none)."""
    loadTestFactor: float | None = None
    """Factor on the profile's step and prefill time that matches spec.capacity.loadTest (unset: no load test)."""
    climbMargin: float | None = None
    """Margin dividing the rate per replica of a pool with a load test, for demand that climbs during a cold
    start (1: none)."""
    replicaRate: float | None = None
    """Req/s planned per replica."""
    needed: int | None = None
    """Replicas the demand needs."""
    wanted: int | None = None
    """Replicas the scale policy wants (bounds, scale-down delay, backlog hold), before the quota."""
    quotaCap: int | None = None
    """Most replicas the quota allows."""
    desired: int | None = None
    """Replicas decided."""


class Decision(ApiModel):
    """One scaling or batching decision and why."""

    time: str
    """When (RFC 3339)."""
    action: str
    """ScaleUp, ScaleDown, SetMaxNumSeqs, Hold..."""
    from_: int | None = Field(default=None, alias="from")
    """Value before."""
    to: int | None = None
    """Value after."""
    reason: str
    """Human-readable reason."""
    applied: bool = True
    """False in Shadow mode or when blocked."""


class QuotaStatus(ApiModel):
    """The quota cap in force for this pool."""

    tier: str | None = None
    """Tier charged."""
    maxReplicas: int | None = None
    """Replicas the tier budget allows this pool now."""
    reason: str | None = None
    """Why the cap is what it is."""


class InferencePoolStatus(ApiModel):
    """Observed state, written only through the /status subresource."""

    replicas: int | None = None
    """Replicas (groups for multi-node pools) that exist; the /scale status field."""
    readyReplicas: int | None = None
    """Replicas ready to serve."""
    desiredReplicas: int | None = None
    """Replicas the operator (or /scale) wants."""
    selector: str | None = None
    """Label selector of the pool's (leader) pods, for /scale."""
    observedGeneration: int | None = None
    """metadata.generation the status reflects."""
    signals: SignalsStatus | None = None
    """Last observations."""
    cost: CostStatus | None = None
    """Current cost."""
    batching: BatchingStatus | None = None
    """Batch limits."""
    quota: QuotaStatus | None = None
    """Quota cap."""
    sizing: SizingStatus | None = None
    """The numbers behind the replica count of the last written decision."""
    decisions: list[Decision] = Field(default_factory=list, max_length=5)
    """The last 5 decisions, newest last."""
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    """Ready, SpecValid, MetricsAvailable, SLOMet, QuotaLimited, Progressing, Reconciled, Paused."""
    plannerMemory: str | None = Field(default=None, max_length=16384)
    """The planner's memory of this pool (forecast, request shape, corrections, scale-down window), as
    versioned compact JSON, so that a restarted operator or a new leader decides as the last one would.
    Written by the operator; not for users to edit."""


class ObjectMeta(ApiModel):
    """The metadata fields this API reads."""

    model_config = ApiModel.model_config | {"extra": "allow"}

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    """Object name: a DNS subdomain (at most 253 lower-case letters, digits, '-' or '.')."""
    namespace: str | None = Field(default=None, max_length=63)
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class PoolMeta(ObjectMeta):
    """The metadata fields this API reads; a pool's name also names its Service and labels its pods."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS_1035_LABEL)
    """A DNS-1035 label (at most 63 of a-z, 0-9, '-'; starting with a letter): it names the pool's Service."""


class InferencePool(ApiModel):
    """A pool of identical LLM inference replicas, autoscaled against p99 SLOs within a tier budget."""

    apiVersion: Literal["inferencefleet.io/v1alpha1"] = API_VERSION
    kind: Literal["InferencePool"] = "InferencePool"
    metadata: PoolMeta
    spec: InferencePoolSpec
    status: InferencePoolStatus | None = None


# ---------------------------------------------------------------- FleetQuota
class GpuPrice(ApiModel):
    """Hourly price of one GPU type."""

    type: str = Field(min_length=1, max_length=63)
    """GPU type as in InferencePool topology.gpu.type."""
    dollarsPerHour: float = Field(ge=0, le=10000)
    """Price of one GPU for one hour."""


class Budget(ApiModel):
    """A GPU and / or dollar budget; an unset field is unlimited."""

    gpus: int | None = Field(default=None, ge=0, le=1000000)
    """GPUs."""
    dollarsPerHour: float | None = Field(default=None, ge=0, le=100000000)
    """Dollars per hour."""


class TierSpec(ApiModel):
    """A tier: guaranteed share, borrowing limit and priority under contention."""

    name: Name
    """Tier name pools refer to, e.g. 'premium'."""
    priority: int = Field(ge=0, le=1000000)
    """Higher keeps its capacity longer under contention."""
    guaranteed: Budget = Field(default_factory=Budget)
    """Always available to this tier when it asks for it."""
    limit: Budget = Field(default_factory=Budget)
    """Never exceeded, borrowing included."""

    model_config = with_rules(
        cel(
            "!has(self.guaranteed.gpus) || !has(self.limit.gpus) || self.guaranteed.gpus <= self.limit.gpus",
            "tier guaranteed.gpus must be less than or equal to limit.gpus",
            ".guaranteed.gpus",
        ),
        cel(
            "!has(self.guaranteed.dollarsPerHour) || !has(self.limit.dollarsPerHour) "
            "|| self.guaranteed.dollarsPerHour <= self.limit.dollarsPerHour",
            "tier guaranteed.dollarsPerHour must be less than or equal to limit.dollarsPerHour",
            ".guaranteed.dollarsPerHour",
        ),
    )

    @model_validator(mode="after")
    def _guarantee_within_limit(self) -> TierSpec:
        for field in ("gpus", "dollarsPerHour"):
            guaranteed, limit = getattr(self.guaranteed, field), getattr(self.limit, field)
            if guaranteed is not None and limit is not None and guaranteed > limit:
                raise ValueError(
                    f"guaranteed.{field}: {guaranteed} must be less than or equal to limit.{field} ({limit})"
                )
        return self


class FleetQuotaSpec(ApiModel):
    """Prices, the overall budget and the tiers that share it."""

    gpuPrices: list[GpuPrice] = Field(min_length=1, max_length=64)
    """Hourly price per GPU type; every pool's GPU type needs one."""
    limits: Budget = Field(default_factory=Budget)
    """The whole fleet's budget."""
    tiers: list[TierSpec] = Field(min_length=1, max_length=32)
    """Tiers, e.g. premium / standard / free."""

    model_config = with_rules(
        cel(
            "self.tiers.all(t, self.tiers.exists_one(u, u.name == t.name))",
            "tiers names must be unique",
            ".tiers",
        ),
        cel(
            "self.gpuPrices.all(p, self.gpuPrices.exists_one(q, q.type == p.type))",
            "gpuPrices types must be unique",
            ".gpuPrices",
        ),
    )

    @model_validator(mode="after")
    def _unique(self) -> FleetQuotaSpec:
        for field, values in (
            ("tiers", [t.name for t in self.tiers]),
            ("gpuPrices", [p.type for p in self.gpuPrices]),
        ):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                key = "name" if field == "tiers" else "type"
                raise ValueError(f"{field}: {key} must be unique, repeated: {', '.join(duplicates)}")
        return self

    def tier(self, name: str) -> TierSpec | None:
        """The tier called ``name``, if any."""
        return next((t for t in self.tiers if t.name == name), None)

    def price(self, gpu_type: str) -> float | None:
        """Dollars per GPU-hour of ``gpu_type``, if priced."""
        return next((p.dollarsPerHour for p in self.gpuPrices if p.type == gpu_type), None)


class TierStatus(ApiModel):
    """Use of one tier at the last tick."""

    name: str
    """Tier name."""
    gpus: int = 0
    """GPUs allotted to the tier's pools."""
    dollarsPerHour: float = 0.0
    """Their hourly cost."""
    borrowedGpus: int = 0
    """GPUs above the guaranteed share."""
    pools: int = 0
    """Pools in the tier."""
    cappedPools: int = 0
    """Pools held below what they asked for."""


class FleetQuotaStatus(ApiModel):
    """Observed use of the quota."""

    observedGeneration: int | None = None
    """metadata.generation the status reflects."""
    tiers: list[TierStatus] = Field(default_factory=list, max_length=32)
    """Per-tier use."""
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    """Ready, OverBudget."""


class FleetQuota(ApiModel):
    """Cluster-wide GPU prices, budgets and tiers that InferencePools draw from."""

    apiVersion: Literal["inferencefleet.io/v1alpha1"] = API_VERSION
    kind: Literal["FleetQuota"] = "FleetQuota"
    metadata: ObjectMeta
    spec: FleetQuotaSpec
    status: FleetQuotaStatus | None = None

    def misfit(self, tier: str, gpu_type: str) -> tuple[str, str] | None:
        """(pool field, why) when this quota cannot budget a pool of ``tier`` on ``gpu_type``, else None."""
        if self.spec.tier(tier) is None:
            return "spec.tier", (f"'{tier}' is not a tier of FleetQuota '{self.metadata.name}'; allowed: "
                                 f"{', '.join(t.name for t in self.spec.tiers)}")
        if self.spec.price(gpu_type) is None:
            return "spec.topology.gpu.type", self.unpriced(gpu_type)
        return None

    def unpriced(self, gpu_type: str) -> str:
        """Why ``gpu_type`` has no dollar figure here."""
        priced = ", ".join(p.type for p in self.spec.gpuPrices) or "none"
        return f"'{gpu_type}' has no price in FleetQuota '{self.metadata.name}' gpuPrices; priced types: {priced}"
