"""Fleet simulator: replica bounds under the planner, cold start, cost accounting, request accounting."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.planner.types import PoolKey, pool_key
from inferencefleet.signals.model import SignalsSnapshot
from inferencefleet.sim.baselines import StaticPolicy
from inferencefleet.sim.fleet import Policy, PoolView, Target, simulate
from inferencefleet.sim.planner_policy import InferenceFleetPolicy
from inferencefleet.sim.replica import Request
from inferencefleet.sim.traces import Trace, bundled_trace_path, load_trace, scale_rate, truncate


def make_pool(**spec: object) -> InferencePool:
    base = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "parametersBillions": 8}, "tier": "free",
            "replicas": {"min": 1, "max": 3}, "autoscaling": {"coldStart": "60s"}}
    return InferencePool.model_validate({"metadata": {"name": "p", "namespace": "ns"}, "spec": base | spec})


def steady(rate: float, seconds: float) -> Trace:
    n = int(rate * seconds)
    return Trace("steady", tuple(Request(i, i / rate, 500, 100) for i in range(n)))


class Recording(InferenceFleetPolicy):
    """The planner policy, remembering every replica count it asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int] = []

    def decide(self, now: float, signals: SignalsSnapshot, pools: Mapping[PoolKey, PoolView]) -> dict[PoolKey, Target]:
        out = super().decide(now, signals, pools)
        self.asked.extend(t.replicas for t in out.values())
        return out


def test_inferencefleet_policy_never_exceeds_max_replicas() -> None:
    pool = make_pool()
    trace = truncate(scale_rate(load_trace(bundled_trace_path()), 20), 300)  # needs far more than 3 replicas
    policy = Recording()
    result = simulate([pool], {pool_key(pool): trace}, policy)
    assert policy.asked and max(policy.asked) == 3
    assert max(row["replicas"] for row in result.series) <= 3
    assert result.pools[0].peak_replicas <= 3
    assert result.requests == len(trace.requests)  # every request is accounted for, served or not


def test_static_cost_is_replicas_times_gpus_times_hours() -> None:
    pool = make_pool(topology={"tensorParallel": 4}, model={"name": "meta-llama/Llama-3.1-70B-Instruct"})
    trace = steady(2.0, 600)
    result = simulate([pool], {pool_key(pool): trace}, StaticPolicy({pool_key(pool): 3}),
                      initial_replicas={pool_key(pool): 3})
    assert result.gpu_hours == pytest.approx(3 * 4 * trace.duration / 3600)
    assert result.attainment == 1.0


def test_multi_node_groups_are_charged_whole() -> None:
    pool = InferencePool.model_validate({"metadata": {"name": "ds", "namespace": "ns"}, "spec": {
        "model": {"name": "deepseek-ai/DeepSeek-V3", "architecture": "moe", "quantization": "fp8"},
        "topology": {"tensorParallel": 8, "pipelineParallel": 2, "expertParallel": True, "nodesPerReplica": 2},
        "replicas": {"min": 1, "max": 4}, "tier": "premium"}})
    trace = steady(1.0, 300)
    result = simulate([pool], {pool_key(pool): trace}, StaticPolicy({pool_key(pool): 2}),
                      initial_replicas={pool_key(pool): 2})
    assert result.gpu_hours == pytest.approx(2 * 16 * trace.duration / 3600)


class StepUp(Policy):
    """Asks for 2 replicas at t = 100 s."""

    name = "step-up"
    interval = 10.0

    def decide(self, now: float, signals: SignalsSnapshot, pools: Mapping[PoolKey, PoolView]) -> dict[PoolKey, Target]:
        return {key: Target(2) for key in pools} if now >= 100 else {}


def test_new_replicas_cost_from_request_and_serve_after_the_cold_start() -> None:
    pool = make_pool()
    trace = steady(4.0, 400)
    result = simulate([pool], {pool_key(pool): trace}, StepUp(), initial_replicas={pool_key(pool): 1})
    ready = {row["t"]: row["ready"] for row in result.series}
    replicas = {row["t"]: row["replicas"] for row in result.series}
    assert replicas[100.0] == 2 and ready[150.0] == 1 and ready[160.0] == 2
    expected = (trace.duration + (trace.duration - 100)) / 3600
    assert result.gpu_hours == pytest.approx(expected)


def test_requests_sharing_a_timestamp_are_all_served() -> None:
    """Arrivals at the same instant (traces quantized to seconds) each reach a replica; none is lost or stuck."""
    pool = make_pool()
    trace = Trace("same-instant", tuple(Request(i, float(i // 4), 500, 20) for i in range(40)))
    result = simulate([pool], {pool_key(pool): trace}, StaticPolicy({pool_key(pool): 2}),
                      initial_replicas={pool_key(pool): 2})
    assert result.requests == 40 and result.attainment == 1.0


def test_requests_beyond_max_context_tokens_are_rejected_not_served() -> None:
    pool = make_pool(model={"name": "meta-llama/Llama-3.1-8B-Instruct", "parametersBillions": 8,
                            "maxContextTokens": 4096})
    requests = [Request(i, i * 0.5, 500, 50) for i in range(20)]
    requests += [Request(100 + i, i * 0.5 + 0.25, 4000, 200) for i in range(5)]  # 4200 tokens > 4096
    trace = Trace("mixed", tuple(sorted(requests, key=lambda r: r.arrival)))
    result = simulate([pool], {pool_key(pool): trace}, StaticPolicy({pool_key(pool): 1}))
    pool_result = result.pools[0]
    assert pool_result.requests == 25 and pool_result.rejected == 5 and pool_result.good == 20


def test_a_request_meets_the_itl_slo_only_when_its_own_p99_gap_does() -> None:
    """A few long steps (a long prompt's prefill chunks) break the p99 ITL of the requests decoding beside
    them although their mean time per output token stays far below the SLO."""
    pool = make_pool(autoscaling={"coldStart": "60s", "slo": {"ttftP99": "10s", "itlP99": "30ms"}},
                     batching={"maxNumBatchedTokens": 4096},
                     model={"name": "meta-llama/Llama-3.1-8B-Instruct", "parametersBillions": 8,
                            "maxContextTokens": 32768})
    short = [Request(i, 0.0, 100, 60) for i in range(4)]
    long_prompt = Request(99, 0.1, 4000 * 7, 1)  # seven 4096-token chunks, each step about 120 ms
    trace = Trace("itl", (*short, long_prompt))
    result = simulate([pool], {pool_key(pool): trace}, StaticPolicy({pool_key(pool): 1}))
    pool_result = result.pools[0]
    assert pool_result.tpot_ok == 5  # every mean time per output token is within 30 ms
    assert pool_result.itl_ok == 1  # only the one-token request has no gap above it
