"""The simulator's own engine: within 5% of the measured H100 tables at zero error, scaled by the engine
error, spread per replica, and not the planner's capacity profile."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from inferencefleet.api.v1alpha1 import InferencePoolSpec
from inferencefleet.sim.engine import EngineFactory, EngineOptions, TableEngine, engine_for

CALIBRATION = Path(__file__).resolve().parents[2] / "data" / "calibration" / "h100-measured"
SPECS = {
    "8b": {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "parametersBillions": 8}, "tier": "free"},
    "70b": {"model": {"name": "meta-llama/Llama-3.1-70B-Instruct", "parametersBillions": 70},
            "topology": {"tensorParallel": 4}, "tier": "premium"},
    "mixtral": {"model": {"name": "mistralai/Mixtral-8x7B-Instruct-v0.1", "architecture": "moe",
                          "parametersBillions": 46.7},
                "topology": {"tensorParallel": 2, "expertParallel": True}, "tier": "standard"},
}
TABLES = {  # (file, model column value, shape, phase, time column)
    ("fused_decode.csv", "llama3-8b-shape-fused", "8b", "decode", "median_ms"),
    ("dense_prefill.csv", "llama3-8b-shape", "8b", "prefill", "median_ms"),
    ("tp-shards/all_tp_shards.csv", "llama3-70b-tp4-shard-fused", "70b", "decode", "step_ms_est"),
    ("tp-shards/all_tp_shards.csv", "llama3-70b-tp4-shard", "70b", "prefill", "step_ms_est"),
    ("tp-shards/all_tp_shards.csv", "mixtral-8x7b-tp2ep2-shard-fused", "mixtral", "decode", "step_ms_est"),
    ("tp-shards/all_tp_shards.csv", "mixtral-8x7b-tp2ep2-shard", "mixtral", "prefill", "step_ms_est"),
}


def measurements() -> list[tuple[str, str, int, int, int, float]]:
    """(shape, phase, batch, context, prompt tokens, measured ms) of every single-prompt measurement."""
    out = []
    for file, model, shape, phase, column in sorted(TABLES):
        path = CALIBRATION / file
        if not path.is_file():
            pytest.fail(f"calibration data missing: {path} (see tests/data/calibration/SOURCE.md)")
        with path.open() as handle:
            for row in csv.DictReader(handle):
                if row["model"] == model and row["phase"] == phase and (phase == "decode" or row["batch"] == "1"):
                    out.append((shape, phase, int(row["batch"]), int(row["context_tokens"]),
                                int(row["prompt_tokens"]), float(row[column])))
    return out


def engine(shape: str, factor: float = 1.0) -> TableEngine:
    model = engine_for(InferencePoolSpec.model_validate(SPECS[shape]), factor)
    assert isinstance(model, TableEngine)
    return model


@pytest.mark.parametrize(("shape", "phase", "batch", "context", "prompt", "measured_ms"), measurements())
def test_the_engine_is_within_5_percent_of_every_measurement(shape, phase, batch, context, prompt, measured_ms):
    model = engine(shape)
    seconds = model.step_time(batch, batch * context) if phase == "decode" else model.prefill_time(prompt)
    assert seconds * 1e3 == pytest.approx(measured_ms, rel=0.05)


@pytest.mark.parametrize("error", [-0.25, 0.25])
def test_the_engine_error_scales_every_step_and_prefill(error):
    exact, off = engine("70b"), engine("70b", 1 + error)
    for batch, cached, prefill in ((1, 2048, 0), (64, 64 * 3000, 0), (32, 32 * 1000, 512), (0, 0, 4096)):
        assert off.step_time(batch, cached, prefill) == pytest.approx((1 + error) * exact.step_time(batch, cached, prefill))


def test_replicas_spread_around_the_error_and_cold_starts_around_the_declared_one():
    spec = InferencePoolSpec.model_validate({**SPECS["8b"], "autoscaling": {"coldStart": "120s"}})
    factory = EngineFactory(spec, EngineOptions(error=0.25, replica_spread=0.05, cold_start_spread=0.2, seed=3))
    drawn = [factory.replica() for _ in range(400)]
    speeds = [model.step_time(16, 16 * 2048) / engine("8b").step_time(16, 16 * 2048) for model, _ in drawn]
    colds = [cold for _, cold in drawn]
    assert statistics.mean(speeds) == pytest.approx(1.25, rel=0.02) and 0.03 < statistics.stdev(speeds) / 1.25 < 0.07
    assert statistics.mean(colds) == pytest.approx(120, rel=0.05) and min(colds) < 100 < 140 < max(colds)
    again = EngineFactory(spec, EngineOptions(error=0.25, replica_spread=0.05, cold_start_spread=0.2, seed=3))
    assert [again.replica()[1] for _ in range(400)] == colds  # seeded: runs repeat
