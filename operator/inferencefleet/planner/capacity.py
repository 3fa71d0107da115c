"""Per-replica capacity model: decode step time and prefill speed per model shape and GPU.

A decode step that holds ``batch`` sequences with ``cached_tokens`` context tokens in total and
also prefills ``prefill_tokens`` chunked-prefill tokens takes

    decode = decode_base + decode_per_seq * batch + decode_per_cached_token * cached_tokens
             + moe_expert * local_experts * (1 - (1 - expert_hit) ** batch)     (MoE only)
             + small_batch_extra(batch)
    step   = decode + max(0, prefill_tokens / prefill_tokens_per_s - decode_base)

* The MoE term is the expected number of experts the critical GPU (the expert-parallel rank every
  layer waits for) activates: it holds ``local_experts`` experts, each hit by one sequence's token
  with probability ``expert_hit``.
* ``small_batch_extra``: the linear fit holds for batch >= 16; below it the measured batch-1 step
  (``batch1_step_s``, at 2048 context tokens) sits above the fit, and the gap tapers linearly to 0
  at batch 16. It depends on the batch only, so the step stays affine in cached tokens (the
  simulator's fast path relies on that).
* Prefill: a mixed step streams the weights once, and the prefill throughput figure already pays
  for one weight pass (``decode_base``), so a prefill chunk only adds what exceeds it.

Sources (see the ``Sources`` note of each profile below):
  H100 = ``shared/calibration/h100-measured`` (fused decode fits, TP shards, memory table);
  A100 = Splitwise ``perf_model.csv`` (Llama-2-70B TP4, A100 / H100 token_time at batch 1..64 =
  1.52 / 1.46 / 1.42 / 1.39 -> decode x1.5; prompt_time at 512 / 2048 tokens = 2.1 / 2.0 ->
  prefill x0.5) and HBM bandwidth 3.35 / 2.04 TB/s -> KV streaming x1.64.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from ..api.v1alpha1 import InferencePoolSpec
from ..errors import UserError

GB = 1e9
GPU_MEMORY_BYTES = {"H100": 85.02 * GB, "A100": 85.02 * GB}
"""Device memory as torch reports it (h100-measured README: 85.02 GB); both are 80 GiB parts."""
VLLM_MEMORY_UTILIZATION = 0.9
"""vLLM --gpu-memory-utilization default: the share of device memory the engine may use."""

FIT_MIN_BATCH = 16
"""Smallest batch of the linear decode fits."""
BATCH1_CONTEXT = 2048
"""Context tokens of the batch-1 measurements."""

A100_DECODE_FACTOR = 1.5
A100_KV_FACTOR = 3.35 / 2.04
A100_PREFILL_FACTOR = 0.5


@dataclass(frozen=True)
class CapacityProfile:
    """Speed of one replica (all its GPUs): decode step time, prefill throughput, KV-cache size."""

    name: str
    decode_base_s: float
    """Step time floor: weight streaming, kernel launches and (tensor-parallel) collectives."""
    decode_per_seq_s: float
    """Added step time per running sequence."""
    decode_per_cached_token_s: float
    """Added step time per cached context token in the batch (KV-cache streaming)."""
    prefill_tokens_per_s: float
    """Prefill throughput of the replica."""
    kv_cache_tokens: int
    """Tokens the replica's KV cache holds."""
    batch1_step_s: float | None = None
    """Measured step at batch 1 and 2048 context tokens (small batches sit above the linear fit)."""
    moe_expert_s: float = 0.0
    """Step time of streaming one more local expert (all layers); 0 for dense models."""
    moe_local_experts: int = 0
    """Experts held by the critical GPU (MoE only)."""
    moe_expert_hit: float = 0.0
    """Probability that one sequence's token activates a given local expert."""

    def step_time(self, batch: float, cached_tokens: int, prefill_tokens: int = 0) -> float:
        """Seconds of one engine step decoding ``batch`` sequences and prefilling ``prefill_tokens``."""
        if batch <= 0 and prefill_tokens <= 0:
            return 0.0
        decode = self._linear(batch, cached_tokens) + self._small_batch_extra(batch)
        return decode + max(0.0, self.prefill_time(prefill_tokens) - self.decode_base_s)

    def _linear(self, batch: float, cached_tokens: int) -> float:
        experts = self.moe_local_experts * (1.0 - math.pow(1.0 - self.moe_expert_hit, max(batch, 1.0)))
        return (
            self.decode_base_s
            + self.decode_per_seq_s * batch
            + self.decode_per_cached_token_s * cached_tokens
            + self.moe_expert_s * experts
        )

    def _small_batch_extra(self, batch: float) -> float:
        if self.batch1_step_s is None or batch >= FIT_MIN_BATCH:
            return 0.0
        gap = self.batch1_step_s - self._linear(1, BATCH1_CONTEXT)
        return max(gap, 0.0) * (FIT_MIN_BATCH - max(batch, 1)) / (FIT_MIN_BATCH - 1)

    def prefill_time(self, tokens: int) -> float:
        """Seconds to prefill ``tokens`` prompt tokens."""
        return max(tokens, 0) / self.prefill_tokens_per_s

    def scaled(self, step_factor: float, prefill_factor: float) -> CapacityProfile:
        """The profile with step times x ``step_factor`` and prefill time x ``prefill_factor``."""
        return replace(
            self,
            decode_base_s=self.decode_base_s * step_factor,
            decode_per_seq_s=self.decode_per_seq_s * step_factor,
            decode_per_cached_token_s=self.decode_per_cached_token_s * step_factor,
            batch1_step_s=None if self.batch1_step_s is None else self.batch1_step_s * step_factor,
            moe_expert_s=self.moe_expert_s * step_factor,
            prefill_tokens_per_s=self.prefill_tokens_per_s / prefill_factor,
        )


@dataclass(frozen=True)
class Shape:
    """Memory facts of one model shape on its reference layout, to size the KV cache."""

    weight_bytes_per_gpu: float
    """bf16 weights on each GPU of the reference layout."""
    kv_bytes_per_token_per_gpu: float
    """bf16 KV bytes one token occupies on each GPU."""
    activation_bytes_per_gpu: float
    """Prefill activation reserve per GPU."""


WEIGHT_BITS = {"none": 16, "fp8": 8, "awq": 4, "gptq": 4}
"""Bits per weight of each spec.model.quantization (4-bit formats ignore their small scale tensors)."""


def kv_cache_tokens(shape: Shape, gpu_memory_bytes: float, weight_bits: int, fp8_kv: bool) -> int:
    """Tokens the KV cache holds: usable memory minus weights and activations, over KV bytes per token."""
    weights = shape.weight_bytes_per_gpu * weight_bits / 16
    per_token = shape.kv_bytes_per_token_per_gpu / (2 if fp8_kv else 1)
    free = VLLM_MEMORY_UTILIZATION * gpu_memory_bytes - weights - shape.activation_bytes_per_gpu
    return max(int(free // per_token), 0)


@dataclass(frozen=True)
class Reference:
    """A calibrated H100 profile (bf16) and the shape that sizes its KV cache."""

    profile: CapacityProfile
    shape: Shape


# Llama-3-8B shape, 1 x H100: fused-decode fit for batch >= 16 (6.47 ms + 9.9 us/seq + 43.1 ns/token),
# 6.89 ms measured at batch 1, ctx 2048; prefill 33.6k-38.4k tok/s (35k). Memory: 16.06 GB weights,
# 128 KiB KV per token, 1.23 GiB prefill activations -> 220 sequences of 2048 tokens (README table).
LLAMA_8B = Reference(
    CapacityProfile("llama3-8b-h100-tp1", 6.47e-3, 9.9e-6, 43.1e-9, 35_000.0, 0, batch1_step_s=6.89e-3),
    Shape(16.06 * GB, 131_072, 1.23 * 2**30),
)
# Llama-3-70B shape, TP4 on 4 x H100: fused compute 15.56 ms + 16.3 us/seq + 26.9 ns/token plus
# 6.72 ms of all-reduce (estimated from Vidur's NCCL profile); 22.22 ms measured at batch 1;
# prefill 12.8k tok/s at 2048 tokens. Memory per GPU: 35.28 GB weights, 80 KiB KV per token,
# 0.81 GiB activations -> 241 sequences of 2048 tokens.
LLAMA_70B_TP4 = Reference(
    CapacityProfile("llama3-70b-h100-tp4", 22.28e-3, 16.3e-6, 26.9e-9, 12_800.0, 0, batch1_step_s=22.22e-3),
    Shape(35.28 * GB, 81_920, 0.81 * 2**30),
)
# Mixtral-8x7B shape, TP2 + EP2 on 2 x H100, critical EP rank, fused step at ctx 2048 = 15.0 ms @1,
# 26.1 @8, 28.3 @64, 39.8 @256. Fit: 9.53 ms base (incl. 3.74 ms collectives) + 3.87 ms per active
# local expert (of 4; hit probability 0.35 reproduces the measured 1.45 / 2.23 / 3.38 / 3.84 active
# at batch 1 / 2 / 4 / 8) + 13.5 us/seq + 21.6 ns/token (64 KiB KV per token per GPU at 3.03 TB/s).
# Max residual 4.4% (batch 8). Prefill 24.8k tok/s at 2048 tokens. Memory per GPU: 46.70 GB weights,
# activations 2.3 GB (back-solved from the README's 205 sequences of 2048 tokens).
MIXTRAL_TP2_EP2 = Reference(
    CapacityProfile(
        "mixtral-8x7b-h100-tp2ep2", 9.53e-3, 13.5e-6, 21.6e-9, 24_800.0, 0,
        batch1_step_s=15.0e-3, moe_expert_s=3.87e-3, moe_local_experts=4, moe_expert_hit=0.35,
    ),
    Shape(46.70 * GB, 65_536, 2.3 * GB),
)
# DeepSeek-V3 class (671B total, 37B active, 256 routed experts top-8, 61 layers, MLA), 16 x H100
# as TP8 x PP2 with expert parallelism, fp8 weights. EXTRAPOLATED (no measurement of this shape):
#  - experts: 58 MoE layers x 44 MB fp8 per expert at 2.7 TB/s (measured expert stream) = 0.945 ms
#    per active local expert over the pipeline; 32 local experts per GPU; hit probability 8/256
#    inflated x1.4 for the critical rank (Mixtral: 0.35 vs uniform 0.25) = 0.044;
#  - base 21 ms = non-expert weights 0.73 ms + kernel overhead 0.16 ms/layer x 61 (Mixtral fit)
#    + TP8 all-reduce 2 x 61 x 45 us + EP dispatch/combine 2 x 58 x 45 us + pipeline hops 0.1 ms;
#  - per sequence 16.3 us (70B TP4 fit); per cached token 23.2 ns (MLA 1152 B/token/layer over the
#    two stages at 3.03 TB/s);
#  - prefill 27k tok/s: 16 GPUs x 250 TFLOP/s effective / 74 GFLOP per token, halved for the TP8
#    and cross-node EP collectives.
# Memory per GPU: 41.9 GB fp8 weights (stored here as the bf16 equivalent, 83.9 GB, halved by fp8),
# 35,136 B of MLA latent per token per GPU (one stage's layers), 2 GB activations.
DEEPSEEK_V3_16GPU = Reference(
    CapacityProfile(
        "deepseek-v3-h100-16gpu", 21.0e-3, 16.3e-6, 23.2e-9, 27_000.0, 0,
        moe_expert_s=0.945e-3, moe_local_experts=32, moe_expert_hit=0.044,
    ),
    Shape(83.9 * GB, 35_136, 2.0 * GB),
)

REFERENCES: dict[str, Reference] = {
    r.profile.name: r for r in (LLAMA_8B, LLAMA_70B_TP4, MIXTRAL_TP2_EP2, DEEPSEEK_V3_16GPU)
}
_REFERENCE_GPUS = {
    LLAMA_8B.profile.name: 1,
    LLAMA_70B_TP4.profile.name: 4,
    MIXTRAL_TP2_EP2.profile.name: 2,
    DEEPSEEK_V3_16GPU.profile.name: 16,
}
_REFERENCE_PARAMS = {
    LLAMA_8B.profile.name: 8.0,
    LLAMA_70B_TP4.profile.name: 70.0,
    MIXTRAL_TP2_EP2.profile.name: 46.7,
    DEEPSEEK_V3_16GPU.profile.name: 671.0,
}
_SIZE_IN_NAME = re.compile(r"(?<![0-9.])(\d+(?:\.\d+)?)[bB](?![a-zA-Z])")
_GPU_FAMILIES = ("H100", "A100")


def parameters_billions(spec: InferencePoolSpec) -> float | None:
    """Model size: spec.model.parametersBillions, else the size in the model name ('...-70B-...')."""
    if spec.model.parametersBillions is not None:
        return spec.model.parametersBillions
    experts = re.search(r"(\d+)x(\d+(?:\.\d+)?)[bB]", spec.model.name)
    if experts:
        return float(experts.group(1)) * float(experts.group(2)) * 0.834  # 8x7B -> 46.7B (shared attention)
    match = _SIZE_IN_NAME.search(spec.model.name)
    return float(match.group(1)) if match else None


def _reference_for(spec: InferencePoolSpec) -> Reference:
    name = spec.model.name.lower()
    params = parameters_billions(spec)
    if spec.model.architecture == "moe":
        big = "deepseek" in name or (params is not None and params >= 200)
        return DEEPSEEK_V3_16GPU if big else MIXTRAL_TP2_EP2
    if params is None:
        return LLAMA_8B
    return LLAMA_8B if params < 30 else LLAMA_70B_TP4


def _gpu_family(gpu_type: str) -> str:
    """'A100' for A100 types; everything else is treated as H100 (the calibrated part)."""
    return next((f for f in _GPU_FAMILIES if f.lower() in gpu_type.lower()), "H100")


def auto_profile_name(spec: InferencePoolSpec) -> str:
    """The reference profile chosen from the model when spec.capacity.profile is unset."""
    return _reference_for(spec).profile.name


def named_reference(name: str, field: str) -> Reference:
    """The calibrated reference called ``name``; an unknown name is a UserError naming ``field``."""
    if name not in REFERENCES:
        raise UserError(f"{field}: unknown profile {name!r}; allowed: {', '.join(sorted(REFERENCES))}")
    return REFERENCES[name]


def named_profile(name: str, field: str = "profile") -> CapacityProfile:
    """The calibrated profile ``name`` with its KV cache sized on its reference H100 layout.

    Weights are bf16 unless they do not fit that way (the DeepSeek-V3-class profile is documented
    as fp8), in which case fp8.
    """
    reference = named_reference(name, field)
    for quantization in ("none", "fp8"):
        tokens = kv_cache_tokens(reference.shape, GPU_MEMORY_BYTES["H100"], WEIGHT_BITS[quantization], False)
        if tokens > 0:
            return replace(reference.profile, kv_cache_tokens=tokens)
    raise UserError(f"{field}: {name!r} leaves no memory for the KV cache on its reference GPUs")


def profile_for(spec: InferencePoolSpec) -> CapacityProfile:
    """The capacity profile of one replica of ``spec``.

    Picks the calibrated reference by architecture and size (spec.capacity.profile names one
    explicitly), rescales it to this pool's size and GPUs per replica (weight streaming scales
    with parameters per GPU), applies the A100 factors, sizes the KV cache from memory with fp8
    weights / KV halving their bytes, then applies the spec.capacity overrides.
    """
    override = spec.capacity
    if override is not None and override.profile is not None:
        reference = named_reference(override.profile, "spec.capacity.profile")
    else:
        reference = _reference_for(spec)
    base = reference.profile
    gpus = spec.topology.gpus
    params = parameters_billions(spec) or _REFERENCE_PARAMS[base.name]
    # Parameters per GPU relative to the reference layout: weight streaming and KV per GPU scale with it.
    weight_ratio = (params / gpus) / (_REFERENCE_PARAMS[base.name] / _REFERENCE_GPUS[base.name])
    profile = base
    name = base.name
    if not math.isclose(weight_ratio, 1.0, rel_tol=0.02):
        profile = replace(
            profile,
            decode_base_s=profile.decode_base_s * weight_ratio,
            batch1_step_s=None if profile.batch1_step_s is None else profile.batch1_step_s * weight_ratio,
            moe_expert_s=profile.moe_expert_s * weight_ratio,
            prefill_tokens_per_s=profile.prefill_tokens_per_s / weight_ratio,
        )
        name = f"{name}-scaled-{params:g}b-{gpus}gpu"
    family = _gpu_family(spec.topology.gpu.type)
    if family == "A100":
        profile = replace(
            profile.scaled(A100_DECODE_FACTOR, 1 / A100_PREFILL_FACTOR),
            decode_per_cached_token_s=profile.decode_per_cached_token_s * A100_KV_FACTOR,
        )
        name = name.replace("h100", "a100")
    shape = reference.shape
    scaled_shape = Shape(
        shape.weight_bytes_per_gpu * weight_ratio,
        shape.kv_bytes_per_token_per_gpu * weight_ratio,
        shape.activation_bytes_per_gpu,
    )
    kv_tokens = kv_cache_tokens(
        scaled_shape,
        GPU_MEMORY_BYTES[family],
        weight_bits=WEIGHT_BITS[spec.model.quantization],
        fp8_kv=spec.engine.kvCacheDtype == "fp8",
    )
    profile = replace(profile, name=name, kv_cache_tokens=kv_tokens)
    return _with_overrides(profile, spec)


def _with_overrides(profile: CapacityProfile, spec: InferencePoolSpec) -> CapacityProfile:
    override = spec.capacity
    if override is None:
        return profile
    fields = (override.decodeBaseMs, override.decodePerSequenceUs, override.decodePerCachedTokenNs,
              override.prefillTokensPerSecond, override.kvCacheTokens)
    if all(f is None for f in fields):
        return profile
    base_ms, per_seq_us, per_token_ns, prefill, kv_tokens = fields
    return replace(
        profile,
        name=f"{profile.name}+overrides",
        decode_base_s=profile.decode_base_s if base_ms is None else base_ms / 1e3,
        batch1_step_s=profile.batch1_step_s if base_ms is None else None,
        decode_per_seq_s=profile.decode_per_seq_s if per_seq_us is None else per_seq_us / 1e6,
        decode_per_cached_token_s=(
            profile.decode_per_cached_token_s if per_token_ns is None else per_token_ns / 1e9
        ),
        prefill_tokens_per_s=profile.prefill_tokens_per_s if prefill is None else prefill,
        kv_cache_tokens=profile.kv_cache_tokens if kv_tokens is None else int(kv_tokens),
    )
