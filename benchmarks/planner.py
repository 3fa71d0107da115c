"""Planner tick time for 1,000 and 10,000 pools, against 100 pools and the quota step alone.

Run: .venv/bin/python benchmarks/planner.py   (prints measured figures and ratios; no assertions)
"""

from __future__ import annotations

import time
from functools import partial

from inferencefleet.api.v1alpha1 import FleetQuota, InferencePool
from inferencefleet.planner.controller import tick
from inferencefleet.planner.quota import QuotaRequest, allocate
from inferencefleet.planner.types import FleetState, PoolObservation
from inferencefleet.signals.model import PoolSignals, Sample, SignalsSnapshot

TIERS = ("premium", "standard", "free")
NOW = 100_000.0


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


def best_of(runs: int, function) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    results = {}
    for count in (100, 1_000, 10_000):
        pools, quota, snapshot, observed = fleet(count)
        runs = 3 if count < 10_000 else 1
        seconds = best_of(runs, partial(tick, pools, quota, snapshot, observed, FleetState(), NOW))
        result = tick(pools, quota, snapshot, observed, FleetState(), NOW)
        requests = [QuotaRequest(d.key, d.tier, d.desired_replicas + 2, d.current_replicas, 1, "H100-80GB", False)
                    for d in result.decisions]
        quota_seconds = best_of(runs, partial(allocate, quota, requests))
        results[count] = seconds
        print(f"{count:>6} pools: tick {seconds * 1e3:9.1f} ms  ({seconds / count * 1e6:7.1f} us/pool); "
              f"quota step alone {quota_seconds * 1e3:8.1f} ms ({quota_seconds / seconds:.0%} of the tick)")
    base = results[100] / 100
    for count in (1_000, 10_000):
        print(f"per-pool cost at {count} pools / at 100 pools: {results[count] / count / base:.2f}x "
              "(1.00x = linear scaling)")


if __name__ == "__main__":
    main()
