"""The planner's capacity model against the simulated replica it plans for.

The planner sizes fleets with an analytic model (planner/slo.py); the simulator steps a replica engine
step by engine step. For the benchmark's three shapes, each with the chunk budget that keeps a full
step within its ITL SLO, the model's SLO rate (uncorrected) must be within -10% / +20% of the rate at
which a load-tested replica keeps 99% of Poisson requests with the bundled trace's lengths within both
SLOs: the online correction and the SLO headroom are there for the rest, not for a model that is off
by half (the model this one replaced planned 0.70x the 70B's capacity with 512-token chunks).
On long-context prompts (lognormal, median 4k tokens) the model plans 0.55x to 1.35x the load-tested
rate (their tail is not in a mean shape: the online correction learns it); the model before predicted
a p99 TTFT of 4.6x the mean prefill even at zero load and planned 0.33x on the 70B.
"""

from __future__ import annotations

import math
import random

import pytest

from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.planner.capacity import profile_for
from inferencefleet.planner.slo import Correction, ReplicaModel, SloCapacity, Workload, slo_capacity
from inferencefleet.sim.oracle import replica_capacity
from inferencefleet.sim.replica import Request
from inferencefleet.sim.traces import Trace, bundled_trace_path, load_trace

SHAPES = {
    "8B, 1 H100, 2048-token chunks": ({"name": "meta-llama/Llama-3.1-8B-Instruct", "parametersBillions": 8},
                                      {"tensorParallel": 1}, 2048, 256, "100ms"),
    "70B, TP4, 512-token chunks": ({"name": "meta-llama/Llama-3.1-70B-Instruct", "parametersBillions": 70},
                                   {"tensorParallel": 4}, 512, 128, "75ms"),
    "Mixtral, TP2+EP2, 1024-token chunks": (
        {"name": "mistralai/Mixtral-8x7B-Instruct-v0.1", "architecture": "moe", "parametersBillions": 46.7},
        {"tensorParallel": 2, "expertParallel": True}, 1024, 256, "100ms"),
}


def planned_and_tested(shape: str, trace: Trace, max_context_tokens: int = 8192) -> tuple[SloCapacity, float]:
    """The model's SLO capacity (uncorrected, mean lengths of ``trace``) and the load-tested rate of one replica."""
    model, topology, chunk, seqs, itl = SHAPES[shape]
    pool = InferencePool.model_validate({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "model": {**model, "maxContextTokens": max_context_tokens}, "topology": topology, "tier": "free",
        "autoscaling": {"slo": {"ttftP99": "2s", "itlP99": itl}},
        "batching": {"mode": "Fixed", "maxNumSeqs": {"min": seqs, "max": seqs}, "maxNumBatchedTokens": chunk}}})
    tested = replica_capacity(pool, trace, requests=1500).rate
    requests = trace.requests
    lengths = Workload(sum(r.prompt_tokens for r in requests) / len(requests),
                       sum(r.output_tokens for r in requests) / len(requests))
    spec = pool.spec
    planned = slo_capacity(ReplicaModel(profile_for(spec), Correction(), lengths, chunk), seqs,
                           spec.autoscaling.slo.itlP99, spec.autoscaling.slo.ttftP99)
    return planned, tested


@pytest.mark.parametrize("shape", SHAPES)
def test_the_planned_slo_rate_is_near_what_a_simulated_replica_serves(shape: str) -> None:
    planned, tested = planned_and_tested(shape, load_trace(bundled_trace_path()))
    assert 0.9 * tested <= planned.rate <= 1.2 * tested, f"planned {planned.rate:.2f} req/s, load-tested {tested:.2f}"


def long_context(requests: int = 2000, seed: int = 1) -> Trace:
    """Lognormal prompts (median 4,000 tokens, sigma 0.6) and outputs (median 200, at most 500)."""
    rng = random.Random(seed)
    shapes = [(min(30_000, int(rng.lognormvariate(math.log(4000), 0.6))),
               min(500, max(1, int(rng.lognormvariate(math.log(200), 0.8))))) for _ in range(requests)]
    return Trace("long-context", tuple(Request(i, float(i), p, o) for i, (p, o) in enumerate(shapes)))


@pytest.mark.parametrize("shape", SHAPES)
def test_the_planned_rate_stays_near_the_load_test_on_long_context_prompts(shape: str) -> None:
    capacity, tested = planned_and_tested(shape, long_context(), max_context_tokens=32768)
    assert capacity.problem is None
    assert 0.55 * tested <= capacity.rate <= 1.35 * tested, f"planned {capacity.rate:.2f} req/s, load-tested {tested:.2f}"
