"""Planner tick time for 1,000 and 10,000 pools, against a 100-pool baseline timed in the same process,
and the share of the quota step.

Run: .venv/bin/python benchmarks/planner.py   (prints measured figures and ratios; no assertions)
"""

from __future__ import annotations

import gc
import time
from functools import partial

from inferencefleet.api.v1alpha1 import FleetQuota, InferencePool
from inferencefleet.planner.controller import tick
from inferencefleet.planner.memory import FleetState
from inferencefleet.planner.quota import QuotaRequest, allocate
from inferencefleet.planner.types import PoolObservation
from inferencefleet.signals.model import PoolSignals, Sample, SignalsSnapshot

TIERS = ("premium", "standard", "free")
NOW = 100_000.0
BASELINE_POOLS = 100


def fleet(count: int) -> tuple[list[InferencePool], FleetQuota, SignalsSnapshot, dict]:
    pools, signals, observed = [], [], {}
    for i in range(count):
        name = f"pool-{i:05d}"
        spec = {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "parametersBillions": 8},
            "replicas": {"min": 1, "max": 16},
            "batching": {"mode": "Adaptive" if i % 2 else "Fixed"},
            "tier": TIERS[i % 3],
        }
        pools.append(InferencePool.model_validate({"metadata": {"name": name, "namespace": "bench"}, "spec": spec}))
        rate = 5.0 + (i * 7919 % 200)
        at = NOW - 5
        signals.append(PoolSignals(
            namespace="bench", pool=name, at=NOW, request_rate=Sample.of(rate, at), waiting=Sample.of(0.0, at),
            running=Sample.of(rate * 3, at), itl_p99=Sample.of(0.04, at), ttft_p99=Sample.of(0.5, at),
            prompt_tokens_per_second=Sample.of(rate * 1000, at), output_tokens_per_second=Sample.of(rate * 200, at),
        ))
        observed[("bench", name)] = PoolObservation(4, 4, 256)
    quota = FleetQuota.model_validate({"metadata": {"name": "default"}, "spec": {
        "gpuPrices": [{"type": "H100-80GB", "dollarsPerHour": 3.0}],
        "limits": {"gpus": count * 6, "dollarsPerHour": count * 15.0},
        "tiers": [{"name": "premium", "priority": 100, "guaranteed": {"gpus": count}},
                  {"name": "standard", "priority": 50, "limit": {"gpus": count * 2}},
                  {"name": "free", "priority": 10, "limit": {"gpus": count}}]}})
    return pools, quota, SignalsSnapshot(at=NOW, pools=signals), observed


def timed(function) -> float:
    """Seconds of one call, after a full collection so earlier garbage is not charged to it."""
    gc.collect()
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def tick_of(count: int):
    pools, quota, snapshot, observed = fleet(count)
    return partial(tick, pools, quota, snapshot, observed, FleetState(), NOW), quota


def main() -> None:
    """Each size is timed in rounds alternating with the 100-pool baseline, best of the rounds each, so
    load from other processes on the machine hits both alike."""
    baseline, _ = tick_of(BASELINE_POOLS)
    for count, rounds in ((1_000, 5), (10_000, 2)):
        run, quota = tick_of(count)
        requests = [QuotaRequest(d.key, d.tier, d.desired_replicas + 2, d.current_replicas, 1, "H100-80GB", False)
                    for d in run().decisions]
        base_times, times, quota_times = [], [], []
        for _ in range(rounds):
            base_times.append(timed(baseline))
            times.append(timed(run))
            quota_times.append(timed(partial(allocate, quota, requests)))
        base, seconds, quota_seconds = min(base_times), min(times), min(quota_times)
        print(f"{count:>6} pools: tick {seconds * 1e3:8.1f} ms ({seconds / count * 1e6:6.1f} us/pool), quota step "
              f"alone {quota_seconds * 1e3:7.1f} ms ({quota_seconds / seconds:.0%}); baseline {BASELINE_POOLS} pools "
              f"{base * 1e3:6.1f} ms ({base / BASELINE_POOLS * 1e6:6.1f} us/pool); per-pool cost ratio "
              f"{seconds / count / (base / BASELINE_POOLS):.2f}x (1.00x = linear scaling); best of {rounds}")


if __name__ == "__main__":
    main()
