"""Capacity profiles (calibration fits, profile choice, GPU and fp8 effects, overrides), the SLO capacity
derived from them (concurrency within the ITL SLO, arrival rate within the TTFT SLO) and its online correction."""

from __future__ import annotations

from dataclasses import replace

import pytest

from inferencefleet.errors import UserError
from inferencefleet.planner.capacity import profile_for
from inferencefleet.planner.correction import corrected
from inferencefleet.planner.slo import (
    RATE_TOLERANCE,
    Correction,
    ReplicaModel,
    Workload,
    slo_capacity,
)
from inferencefleet.planner.tuning import DEFAULT_TUNING
from inferencefleet.signals.buckets import VLLM_BUCKETS

ITL_MARGIN = DEFAULT_TUNING.batching.itl_margin
CORRECTION = DEFAULT_TUNING.correction
LOW, MIN_LOAD = CORRECTION.low, CORRECTION.min_load

# (pool spec extras, batch, measured step ms at ctx 2048, tolerance) from shared/calibration/h100-measured:
# README "TPOT vs batch" (dense 8B fused) and "Tensor- and expert-parallel shards" (step fused).
LLAMA_70B = {"model": {"name": "meta-llama/Llama-3.1-70B-Instruct", "parametersBillions": 70},
             "topology": {"tensorParallel": 4}}
MIXTRAL = {"model": {"name": "mistralai/Mixtral-8x7B-Instruct-v0.1", "architecture": "moe", "parametersBillions": 46.7},
           "topology": {"tensorParallel": 2, "expertParallel": True}}
CALIBRATION = [
    ({}, 1, 6.89, 0.02), ({}, 16, 8.12, 0.02), ({}, 64, 12.75, 0.02), ({}, 128, 19.02, 0.02),
    (LLAMA_70B, 1, 22.22, 0.02), (LLAMA_70B, 64, 26.54, 0.02), (LLAMA_70B, 256, 40.88, 0.02),
    (MIXTRAL, 1, 15.01, 0.02), (MIXTRAL, 4, 22.91, 0.03), (MIXTRAL, 8, 26.11, 0.05),
    (MIXTRAL, 64, 28.28, 0.02), (MIXTRAL, 256, 39.79, 0.02),
]


@pytest.mark.parametrize(("extra", "batch", "measured_ms", "tolerance"), CALIBRATION)
def test_step_time_matches_h100_measurements(make_pool, extra, batch, measured_ms, tolerance):
    profile = profile_for(make_pool(**extra).spec)
    assert profile.step_time(batch, batch * 2048) * 1e3 == pytest.approx(measured_ms, rel=tolerance)


# (pool spec extras, prompt tokens, measured prefill ms): README "Prefill" (dense 8B, one sequence) and
# "Prefill, one sequence" of the TP/EP shards (step = compute + comm est).
PREFILL = [({}, 1024, 28.2), ({}, 2048, 56.2), ({}, 4096, 115.2), (LLAMA_70B, 2048, 159.5), (MIXTRAL, 2048, 82.6)]


@pytest.mark.parametrize(("extra", "tokens", "measured_ms"), PREFILL)
def test_prefill_time_matches_h100_measurements(make_pool, extra, tokens, measured_ms):
    assert profile_for(make_pool(**extra).spec).prefill_time(tokens) * 1e3 == pytest.approx(measured_ms, rel=0.05)


@pytest.mark.parametrize(("extra", "expected"), [
    ({}, "llama3-8b-h100-tp1"),
    (LLAMA_70B, "llama3-70b-h100-tp4"),
    (MIXTRAL, "mixtral-8x7b-h100-tp2ep2"),
    ({"model": {"name": "deepseek-ai/DeepSeek-V3", "architecture": "moe", "parametersBillions": 671,
                "quantization": "fp8"},
      "topology": {"tensorParallel": 8, "pipelineParallel": 2, "expertParallel": True, "nodesPerReplica": 2}},
     "deepseek-v3-h100-16gpu"),
])
def test_profile_chosen_by_architecture_size_and_topology(make_pool, extra, expected):
    assert profile_for(make_pool(**extra).spec).name == expected


def test_size_comes_from_the_model_name_when_parameters_are_unset(make_pool):
    spec = make_pool(model={"name": "meta-llama/Llama-3.1-70B-Instruct", "parametersBillions": None},
                     topology={"tensorParallel": 4}).spec
    assert profile_for(spec).name == "llama3-70b-h100-tp4"


def test_moe_step_rises_steeply_at_small_batch_then_flattens(make_pool):
    profile = profile_for(make_pool(**MIXTRAL).spec)
    steps = [profile.step_time(b, 0) for b in (1, 8, 16, 32)]
    assert steps[1] - steps[0] > 5 * (steps[3] - steps[2])


def test_a100_is_slower_by_the_documented_factors(make_pool):
    h100 = profile_for(make_pool().spec)
    a100 = profile_for(make_pool(topology={"gpu": {"type": "A100-80GB"}}).spec)
    assert a100.step_time(64, 64 * 2048) / h100.step_time(64, 64 * 2048) == pytest.approx(1.55, abs=0.07)
    assert a100.prefill_tokens_per_s == pytest.approx(h100.prefill_tokens_per_s / 2)
    assert "a100" in a100.name


def test_fp8_weights_and_kv_enlarge_the_kv_cache(make_pool):
    plain = profile_for(make_pool(**LLAMA_70B).spec).kv_cache_tokens
    fp8_kv = profile_for(make_pool(**LLAMA_70B, engine={"kvCacheDtype": "fp8"}).spec).kv_cache_tokens
    fp8_both = profile_for(make_pool(**{**LLAMA_70B, "model": {**LLAMA_70B["model"], "quantization": "fp8"}},
                                     engine={"kvCacheDtype": "fp8"}).spec).kv_cache_tokens
    assert plain == pytest.approx(241 * 2048, rel=0.01)  # README: 241 sequences of 2048 tokens, vLLM-like
    assert fp8_kv == pytest.approx(2 * plain, rel=0.01)
    assert fp8_both > fp8_kv


def test_larger_dense_model_on_same_gpus_is_slower(make_pool):
    small = profile_for(make_pool().spec)
    bigger = profile_for(make_pool(model={"name": "x/model-14B", "parametersBillions": 14}).spec)
    assert bigger.step_time(32, 32 * 1024) > small.step_time(32, 32 * 1024)
    assert bigger.kv_cache_tokens < small.kv_cache_tokens


def test_capacity_overrides_win(make_pool):
    profile = profile_for(make_pool(capacity={"decodeBaseMs": 10, "decodePerSequenceUs": 0,
                                              "decodePerCachedTokenNs": 0, "kvCacheTokens": 1000,
                                              "prefillTokensPerSecond": 1000}).spec)
    assert profile.step_time(4, 400) == pytest.approx(0.010)
    assert profile.kv_cache_tokens == 1000
    assert profile.prefill_time(500) == pytest.approx(0.5)


def test_unknown_profile_name_is_a_clear_error(make_pool):
    with pytest.raises(UserError, match=r"spec.capacity.profile: unknown profile 'nope'; allowed: .*llama3-8b"):
        profile_for(make_pool(capacity={"profile": "nope"}).spec)


def test_named_profile_is_used(make_pool):
    assert profile_for(make_pool(capacity={"profile": "llama3-70b-h100-tp4"},
                                 topology={"tensorParallel": 4},
                                 model={"parametersBillions": 70}).spec).name == "llama3-70b-h100-tp4"


def test_step_is_affine_in_cached_tokens_at_fixed_batch(make_pool):
    profile = profile_for(make_pool().spec)
    for batch in (1, 4, 32):
        a, b, c = (profile.step_time(batch, n, 512) for n in (1000, 2000, 3000))
        assert b - a == pytest.approx(c - b)


def test_prefill_chunk_adds_only_what_exceeds_the_weight_pass(make_pool):
    profile = profile_for(make_pool().spec)
    decode = profile.step_time(32, 32 * 1024)
    assert profile.step_time(32, 32 * 1024, 50) == pytest.approx(decode)
    assert profile.step_time(32, 32 * 1024, 4096) == pytest.approx(
        decode + 4096 / profile.prefill_tokens_per_s - profile.decode_base_s)


def _model(make_pool, chunk=512, correction=None, **extra):
    spec = make_pool(batching={"maxNumBatchedTokens": chunk}, **extra).spec
    return ReplicaModel(profile_for(spec), correction or Correction(), Workload(1024, 256), chunk)


SHAPES = {"8B": {}, "70B TP4": LLAMA_70B, "Mixtral TP2+EP2": MIXTRAL}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("itl", "ttft"), [(0.04, 1.0), (0.06, 2.0), (0.1, 5.0)])
def test_concurrency_is_the_largest_batch_meeting_the_itl_slo_with_margin(make_pool, shape, itl, ttft):
    model = _model(make_pool, **SHAPES[shape])
    capacity = slo_capacity(model, 512, itl, ttft)
    assert capacity.problem is None
    assert capacity.itl_p99 == model.itl_p99(capacity.batch) <= itl * ITL_MARGIN
    limit = min(512, model.kv_batch_limit())
    assert capacity.batch == limit or model.itl_p99(capacity.batch + 1) > itl * ITL_MARGIN


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ttft", [0.5, 1.0, 2.0, 5.0])
def test_arrival_rate_is_the_rate_whose_predicted_p99_ttft_meets_the_slo(make_pool, shape, ttft):
    model = _model(make_pool, **SHAPES[shape])
    capacity = slo_capacity(model, 256, 0.1, ttft)
    assert capacity.problem is None and capacity.rate > 0
    predicted = model.ttft_p99(capacity.rate, capacity.batch)
    above = model.ttft_p99(capacity.rate * (1 + 2 * RATE_TOLERANCE), capacity.batch)
    assert predicted is not None and predicted <= ttft
    assert above is None or above > ttft  # the SLO binds, or the replica saturates just above
    assert above is None or predicted >= 0.99 * ttft


def test_a_looser_ttft_slo_serves_more_requests_per_replica_up_to_saturation(make_pool):
    model = _model(make_pool)
    rates = [slo_capacity(model, 256, 0.1, ttft).rate for ttft in (0.3, 0.5, 1.0, 2.0, 10.0, 100.0)]
    assert rates == sorted(rates) and rates[0] < rates[1] < rates[-1] * (1 - RATE_TOLERANCE)
    assert model.ttft_p99(rates[-1] * 1.001) is None  # a little more and the replica saturates


def test_prefill_chunks_share_the_decodes_weight_pass(make_pool):
    """Serving prompts in the decodes' steps costs only what a chunk adds beyond the weight pass, so a
    replica serves more than running prefill and decode one after the other would (the 70B with
    512-token chunks: 1.5x), and its mean step is the fixed point of Little's law over one step."""
    model = _model(make_pool, **LLAMA_70B)
    rate = slo_capacity(model, 128, 0.075, 100.0).rate
    assert rate > 1.4 / (model.decode_cost(128) + model.prefill_service())
    step = model.mean_step(rate / 2)
    assert step is not None
    decoding, prompt_tokens = rate / 2 * 256 * step, rate / 2 * 1024 * step
    assert step == pytest.approx(model.step(decoding, prompt_tokens), rel=1e-6)


def test_an_unattainable_ttft_slo_is_reported_with_the_prefill_time(make_pool):
    capacity = slo_capacity(_model(make_pool), 256, 0.1, 0.03)
    assert capacity.problem is not None and "TTFT p99 30ms is unattainable: a 1024-token prompt needs 29ms" \
        in capacity.problem
    assert capacity.rate > 0  # still sized on throughput, so adding replicas keeps helping


def _observe(model, truth, batch, rate, itl=True, ttft=True, buckets=None, ticks=40):
    for _ in range(ticks):
        model = replace(model, correction=corrected(model, truth.itl_p99(batch) if itl else None,
                                                    truth.ttft_p99(rate) if ttft else None, batch, rate, CORRECTION,
                                                    buckets))
    return model


@pytest.mark.parametrize("step", [1.4, 0.7])
def test_the_step_multiplier_learns_a_slower_engine_and_never_a_faster_one(make_pool, step):
    """200-token chunks hide in the weight pass, so the p99 ITL is the decode step alone. A p99 below the
    model's says its full-budget envelope is loose, not that decoding is faster: planned at the profile's speed."""
    truth = _model(make_pool, chunk=200, correction=Correction(step, 1.0))
    model = _observe(_model(make_pool, chunk=200), truth, 48, 5.0, ttft=False)
    assert model.correction.step == pytest.approx(max(step, 1.0), rel=0.01)
    assert model.arrival_rate(48, 2.0) == pytest.approx(truth.arrival_rate(48, 2.0), rel=0.01) if step > 1 \
        else model.arrival_rate(48, 2.0) < truth.arrival_rate(48, 2.0)


@pytest.mark.parametrize("prefill", [1.8, 0.85, 0.6])
def test_the_prefill_multiplier_converges_to_the_engine_it_observes(make_pool, prefill):
    """2048-token chunks: prefill shows in the step, so the p99 TTFT of a loaded replica measures it.
    An engine faster than LOW x the profile is planned at LOW (implausible, and errs on the SLO's side)."""
    truth = _model(make_pool, chunk=2048, correction=Correction(1.0, prefill))
    rate = 0.7 * truth.arrival_rate(48, 2.0)
    model = _observe(_model(make_pool, chunk=2048), truth, 48, rate, itl=False)
    assert model.correction.prefill == pytest.approx(max(prefill, LOW), rel=0.01)
    if prefill >= LOW:
        assert model.arrival_rate(48, 2.0) == pytest.approx(truth.arrival_rate(48, 2.0), rel=0.01)
    else:
        assert model.arrival_rate(48, 2.0) <= truth.arrival_rate(48, 2.0) * (1 + RATE_TOLERANCE)


def test_a_p99_read_from_a_histogram_only_corrects_the_model_out_of_its_bucket(make_pool):
    """vLLM's ITL bucket (50, 75] ms: a prediction in the observed p99's bucket learns nothing, and one
    below it is raised to the bucket's lower edge, not to the interpolated value."""
    model = _model(make_pool, chunk=200, **LLAMA_70B)  # 200-token chunks hide in the 70B's weight pass
    predicted = model.itl_p99(48)
    assert predicted < 0.05
    inside = replace(model, correction=Correction(0.06 / predicted, 1.0))
    assert corrected(inside, 0.074, None, 48, 5.0, CORRECTION, VLLM_BUCKETS) == inside.correction
    truth = _model(make_pool, chunk=200, correction=Correction(0.074 / predicted, 1.0), **LLAMA_70B)
    learnt = _observe(model, truth, 48, 5.0, ttft=False, buckets=VLLM_BUCKETS)
    assert learnt.itl_p99(48) == pytest.approx(0.05, rel=0.01)  # the lower edge of 74 ms's bucket
    exact = _observe(model, truth, 48, 5.0, ttft=False)
    assert exact.itl_p99(48) == pytest.approx(0.074, rel=0.01)  # read as exact, it goes to 74 ms


def test_prefill_multiplier_learns_only_where_a_p99_ttft_measures_queueing(make_pool):
    """Light load: the p99 is the longest prompts' own prefill. Prefill hidden in the weight pass: a slower
    prefill would not move the p99. Neither moves the multiplier; a loaded replica whose prefill shows does."""
    hidden, shows = _model(make_pool, chunk=128), _model(make_pool, chunk=2048)
    light = 0.1 * shows.arrival_rate(48, 100.0)
    assert shows.prefill_load(light) < MIN_LOAD
    assert corrected(shows, None, 1.0, 48, light, CORRECTION).prefill == 1.0
    loaded = 0.7 * hidden.arrival_rate(48, 100.0)
    assert hidden.prefill_load(loaded) >= MIN_LOAD
    assert corrected(hidden, None, 1.0, 48, loaded, CORRECTION).prefill == 1.0
    busy = 0.7 * shows.arrival_rate(48, 100.0)
    assert corrected(shows, None, 1.0, 48, busy, CORRECTION).prefill != 1.0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("prompt", [1200, 4000, 8000])
def test_at_light_load_the_p99_ttft_is_the_prompts_own_chunked_prefill(make_pool, shape, prompt):
    """Nearly idle, a request waits for nothing: its TTFT is its own prefill in chunks of the budget (each
    a full step) plus the step in progress, not a multiple of it, so long prompts keep a positive rate."""
    spec = make_pool(**SHAPES[shape]).spec
    chunk = 512
    model = ReplicaModel(profile_for(spec), Correction(), Workload(prompt, 200), chunk)
    full = model.step(0, chunk)
    own = prompt / chunk * full
    assert own <= model.ttft_p99(1e-4) <= own + 1.01 * full
    assert slo_capacity(model, 128, 0.1, 1.5 * (own + full)).rate > 0
