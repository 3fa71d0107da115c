"""Fidelity: replica step times reproduce the H100 measurements (shared/calibration/h100-measured) within 5%.

The step is measured through the simulated replica (B requests prefilled to a 2048-token context,
then one pure decode step), so the replica's batch and cached-token accounting is checked too.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from inferencefleet.api.v1alpha1 import InferencePoolSpec
from inferencefleet.planner.capacity import profile_for
from inferencefleet.sim.replica import Replica, Request

CALIBRATION = Path(__file__).resolve().parents[2] / "data" / "calibration" / "h100-measured"
SPECS = {
    "llama3-8b-shape-fused": {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "parametersBillions": 8},
                              "tier": "free"},
    "llama3-70b-tp4-shard-fused": {"model": {"name": "meta-llama/Llama-3.1-70B-Instruct", "parametersBillions": 70},
                                   "topology": {"tensorParallel": 4}, "tier": "premium"},
    "mixtral-8x7b-tp2ep2-shard-fused": {
        "model": {"name": "mistralai/Mixtral-8x7B-Instruct-v0.1", "architecture": "moe", "parametersBillions": 46.7},
        "topology": {"tensorParallel": 2, "expertParallel": True}, "tier": "standard"},
}


def rows(relative: str) -> list[dict[str, str]]:
    path = CALIBRATION / relative
    if not path.is_file():
        pytest.fail(f"calibration data missing: {path} (copied from shared/calibration; see tests/data/calibration/SOURCE.md)")
    with path.open() as handle:
        return list(csv.DictReader(handle))


def simulated_decode_step(model: str, batch: int, context: int) -> float:
    """Milliseconds of one decode step of ``batch`` sequences holding ``context`` tokens each."""
    # the measurements used all GPU memory; vLLM's 10% reserve would not fit the largest batches
    profile = replace(profile_for(InferencePoolSpec.model_validate(SPECS[model])), kv_cache_tokens=10**8)
    replica = Replica(profile, max_num_seqs=batch, max_num_batched_tokens=max(8192, batch * context))
    for i in range(batch):
        replica.submit(Request(i, 0.0, context - 1, 1000))
    outcome = replica.step()
    while outcome is not None and len(outcome.decoded) < batch:
        outcome = replica.step()
    assert outcome is not None and len(outcome.decoded) == batch and not outcome.first_tokens
    return outcome.duration * 1000


def cases() -> list[tuple[str, int, int, float]]:
    """(model, batch, context, measured ms): the README tables (ctx 2048) and the fit region (batch >= 16)."""
    out = []
    for row in rows("fused_decode.csv"):
        batch, context = int(row["batch"]), int(row["context_tokens"])
        if row["model"] == "llama3-8b-shape-fused" and (context == 2048 or batch >= 16):
            out.append((row["model"], batch, context, float(row["median_ms"])))
    for row in rows("tp-shards/all_tp_shards.csv"):
        if row["model"] in SPECS and row["phase"] == "decode":
            out.append((row["model"], int(row["batch"]), int(row["context_tokens"]), float(row["step_ms_est"])))
    return out


@pytest.mark.parametrize(("model", "batch", "context", "measured"), cases())
def test_decode_step_matches_h100_measurement(model: str, batch: int, context: int, measured: float) -> None:
    assert simulated_decode_step(model, batch, context) == pytest.approx(measured, rel=0.05)


@pytest.mark.parametrize("prompt", [1024, 2048, 4096, 8192])
def test_prefill_matches_h100_measurement(prompt: int) -> None:
    measured = next(float(r["median_ms"]) for r in rows("dense_prefill.csv")
                    if int(r["batch"]) == 1 and int(r["prompt_tokens"]) == prompt)
    profile = profile_for(InferencePoolSpec.model_validate(SPECS["llama3-8b-shape-fused"]))
    replica = Replica(profile, max_num_seqs=1, max_num_batched_tokens=prompt)
    replica.submit(Request(0, 0.0, prompt, 1))
    outcome = replica.step()
    assert outcome is not None and outcome.first_tokens
    assert outcome.duration * 1000 == pytest.approx(measured, rel=0.05)
