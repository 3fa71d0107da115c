"""Batching-latency policy: the recommended --max-num-seqs and when a rolling restart is worth it."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from inferencefleet.planner.batching import GRAPH_STEP, choose_max_num_seqs, recommended_max_num_seqs
from inferencefleet.planner.capacity import profile_for
from inferencefleet.planner.slo import Correction, ReplicaModel, Workload
from inferencefleet.planner.tuning import DEFAULT_TUNING

from .conftest import pool

NOW = 50_000.0


def model_of(spec):
    return ReplicaModel(profile_for(spec), Correction(), Workload(1024, 256), spec.batching.maxNumBatchedTokens)


def spec_with(itl="60ms", mode="Adaptive", max_seqs=256):
    return pool(batching={"mode": mode, "maxNumBatchedTokens": 512, "maxNumSeqs": {"min": 8, "max": max_seqs}},
                autoscaling={"slo": {"itlP99": itl}}).spec


# On the 8B H100 profile with 512-token chunks, 60 ms recommends 256 and 20 ms recommends 104;
# at 100 req/s, 32 seqs need 8 replicas and 256 need 6 (above about 57 sequences decoding per replica
# the prefill left in the token budget binds, not the batch: 128 and 256 need the same).
CASES = {
    # name: (spec, running, demand, replicas, cold start, last rollout, (max_num_seqs, rollout, action), reason)
    "gain beats the rollout": (spec_with(), 32, 100.0, 8, 120.0, None, (256, True, "SetMaxNumSeqs"),
                               "max-num-seqs 32 -> 256: saves 2 replicas (7200 replica-s per hour) for a rollout "
                               "of 8 x 120s cold start"),
    "rollout costs more than it saves": (spec_with(), 32, 100.0, 8, 1000.0, None, (32, False, "KeepMaxNumSeqs"),
                                         "less than a rollout costs (8 x 1000s cold start)"),
    "nothing saved": (spec_with(), 128, 10.0, 1, 120.0, None, (128, False, "KeepMaxNumSeqs"),
                      "256 saves no replicas at 10.0 req/s and 128 meets the 60ms ITL SLO"),
    "within the cooldown": (spec_with(), 128, 100.0, 8, 120.0, NOW - 100, (128, False, "KeepMaxNumSeqs"),
                            "last rollout 100s ago, within the 1800s cooldown"),
    "cooldown of ten cold starts": (spec_with(), 128, 100.0, 8, 300.0, NOW - 2000, (128, False, "KeepMaxNumSeqs"),
                                    "within the 3000s cooldown"),
    "move below the step": (spec_with(), 224, 100.0, 8, 120.0, None, (224, False, "KeepMaxNumSeqs"),
                            "a 14% move is below the 25% step worth a restart"),
    "SLO broken, even within the cooldown": (spec_with("20ms"), 256, 100.0, 8, 120.0, NOW, (104, True, "SetMaxNumSeqs"),
                                             "max-num-seqs 256 -> 104: predicted ITL p99 23ms at 256 breaks the "
                                             "20ms SLO"),
    "signals missing": (spec_with("20ms"), 256, None, 8, 120.0, None, (256, False, "KeepMaxNumSeqs"),
                        "signals missing: no restart without them"),
    "outside the spec range": (spec_with(max_seqs=128), 256, None, 8, 120.0, NOW, (128, True, "SetMaxNumSeqs"),
                               "256 is outside batching.maxNumSeqs [8, 128]"),
    "no pods": (spec_with("20ms"), None, 100.0, 0, 120.0, None, (104, False, "SetMaxNumSeqs"),
                "max-num-seqs 104: no running pods, so no restart is needed"),
    "Fixed runs the maximum": (spec_with("20ms", mode="Fixed"), 64, 100.0, 8, 120.0, NOW, (256, True, "SetMaxNumSeqs"),
                               "max-num-seqs 64 -> 256: batching.mode Fixed runs batching.maxNumSeqs.max"),
}


@pytest.mark.parametrize("case", CASES)
def test_batching_decision(case):
    spec, running, demand, replicas, cold_start, last_rollout, expected, reason = CASES[case]
    choice = choose_max_num_seqs(spec, model_of(spec), running, demand, replicas, cold_start, last_rollout, NOW)
    assert choice.record is not None
    assert (choice.max_num_seqs, choice.rollout, choice.record.action) == expected
    assert reason in choice.record.reason
    assert choice.record.from_ == running and choice.record.to == choice.max_num_seqs


@pytest.mark.parametrize("mode", ["Fixed", "Adaptive"])
def test_running_what_is_wanted_needs_no_decision(mode):
    spec = spec_with("20ms", mode=mode)
    running = 256 if mode == "Fixed" else 104
    choice = choose_max_num_seqs(spec, model_of(spec), running, 100.0, 8, 120.0, None, NOW)
    assert (choice.max_num_seqs, choice.rollout, choice.record) == (running, False, None)


@settings(max_examples=60, deadline=None)
@given(itl_ms=st.integers(12, 200), chunk=st.sampled_from([256, 512, 1024, 2048]),
       bounds=st.tuples(st.integers(1, 64), st.integers(64, 512)))
def test_property_recommendation_is_the_largest_batch_meeting_the_slo_with_margin(itl_ms, chunk, bounds):
    spec = pool(batching={"mode": "Adaptive", "maxNumBatchedTokens": chunk,
                          "maxNumSeqs": {"min": bounds[0], "max": bounds[1]}},
                autoscaling={"slo": {"itlP99": f"{itl_ms}ms"}}).spec
    model = model_of(spec)
    recommended, unattainable = recommended_max_num_seqs(spec, model)
    target = itl_ms / 1e3 * DEFAULT_TUNING.batching.itl_margin
    assert bounds[0] <= recommended <= bounds[1]
    if unattainable is None and recommended > bounds[0]:
        assert model.itl_p99(recommended) <= target
    if unattainable is None and recommended + GRAPH_STEP <= bounds[1]:
        assert model.itl_p99(recommended + GRAPH_STEP) > target


@settings(max_examples=40, deadline=None)
@given(tight=st.integers(12, 150), extra=st.integers(0, 100), chunk=st.sampled_from([256, 512, 2048]))
def test_property_a_looser_attainable_itl_slo_never_gets_a_smaller_batch(tight, extra, chunk):
    def recommended(itl_ms):
        spec = pool(batching={"mode": "Adaptive", "maxNumBatchedTokens": chunk},
                    autoscaling={"slo": {"itlP99": f"{itl_ms}ms"}}).spec
        return recommended_max_num_seqs(spec, model_of(spec))

    (small, problem), (big, _) = recommended(tight), recommended(tight + extra)
    # An SLO the prefill chunk alone breaks is reported as a problem and sized on decode-only steps
    # (slo.itl_batch); the ordering holds among SLOs a step with a full chunk can meet.
    assume(problem is None)
    assert big >= small
