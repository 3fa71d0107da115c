"""Autoscaling benchmark: inferencefleet against HPA, KEDA, Knative KPA, static peak and the oracle.

Scenarios (issue 6) x traces (Azure 2023 conversation and code, ../shared/traces/) x all policies.
Each trace is rate-scaled so that its peak minute needs ``--peak-replicas`` replicas (default 20,
--quick 12) at the replica's load-tested SLO capacity. Prints GPU-hours, SLO attainment, ratios
against HPA and the oracle, whether each issue-6 target is met, and the simulator's speed:
requests replayed per wall second (and per CPU second) over all runs of a case, counting each of
the oracle's replay rounds; per policy (one replay each); for the inferencefleet runs; and
against a baseline measured in this process, one replica stepped one engine step at a time.

Below each case's table, a reference no autoscaler can reach: the cheapest schedule that knows every
minute's mean arrival rate a cold start ahead (``sim.oracle.minute_foresight``: each minute's need
times the smallest uniform headroom that gets 99% of requests within the SLOs). An autoscaler knows
at most the minutes already past; where even this reference costs more GPU-hours than the targets
allow (1.15x the oracle's, 0.75x HPA's), meeting them takes foresight of the bursts inside a minute.
Its replays are not in the speed figures.

    .venv/bin/python benchmarks/autoscaling.py [--quick] [--json] [--scenario NAME] [--trace NAME] [--seed N]
        [--engine-error E ...] [--from-minimum]

``--seed`` draws another rate scaling of the same traces (which copies arrive, with which lengths) and
another draw of each generated family, to show that the figures do not hang on one draw.
Traces: the Azure 2023 conversation and code traces (``conv``, ``code``) and the generated families
of ``sim.scenarios`` (``long-context``, ``diurnal-hour``, ``diurnal-10min``, ``step``, ``ramp``), each
at the same peak (``--peak-replicas`` at the load-tested capacity; lengths of the generated
envelopes drawn from the conversation trace).
``--engine-error E`` (repeatable, e.g. -0.25 0 0.25) runs the simulator's own engine (``sim.engine``,
the measured tables with true times x (1 + E), per-replica spread, cold starts around the declared
one); without it the engine is the planner's own profile (the closed world of the earlier figures).
``--from-minimum``: every autoscaler starts from replicas.min with no history, scored from its first
minute. Tuning set: seeds 1 and 2; report set: seeds 11 and 12 (never tune on it).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.planner.capacity import profile_for
from inferencefleet.planner.types import pool_key
from inferencefleet.sim import scenarios
from inferencefleet.sim.compare import POLICIES, run_policies, with_load_test
from inferencefleet.sim.engine import EngineOptions
from inferencefleet.sim.fleet import SimResult
from inferencefleet.sim.oracle import WINDOW, ReplicaCapacity, minute_foresight, replica_capacity
from inferencefleet.sim.replica import Replica, Request
from inferencefleet.sim.traces import Trace, load_trace, scale_rate, truncate

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
TRACE_FILES = {"conv": "azure_llm_2023_conv.csv", "code": "azure_llm_2023_code.csv"}
FAMILIES = ("long-context", "diurnal-hour", "diurnal-10min", "step", "ramp")
"""Generated families (sim.scenarios), run beside TRACE_FILES."""
FAMILY_MINUTES = {"long-context": 30.0, "diurnal-hour": 60.0, "diurnal-10min": 10.0, "step": 20.0, "ramp": 30.0}
"""Length of each generated family's run (--quick: at most 10 minutes)."""
TUNING_SEEDS = (1, 2)
REPORT_SEEDS = (11, 12)
"""Constants are tuned on the tuning seeds only; the report seeds are for the published figures."""
QUICK_MINUTES = 10.0
QUICK_PEAK_REPLICAS = 12
PEAK_REPLICAS = 20
"""Run length and peak need of --quick, and the peak need without it."""
MOST_VS_ORACLE = 1.15
MOST_VS_HPA = 0.75
"""The issue-6 cost targets: GPU-hours at most these multiples of the oracle's and of HPA's."""

# maxNumBatchedTokens (the chunked-prefill budget) is sized per model so that a step carrying a full
# prefill chunk stays within the ITL SLO (Sarathi-Serve's rule): 2048 tokens = 59 ms on the 8B,
# 512 = 40 ms on the 70B TP4, 1024 = 41 ms on Mixtral TP2+EP2 (plus the decode step). With vLLM's
# 8192 a chunk alone takes 234 / 640 / 330 ms and no pool can meet a token-level ITL p99 SLO.
SCENARIOS: dict[str, dict[str, Any]] = {
    # Llama-3-8B-class dense on 1 H100, 60 s cold start; SLOs of the free-tier example pool.
    "8b-dense-1xH100": {
        "model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "parametersBillions": 8},
        "topology": {"tensorParallel": 1},
        "autoscaling": {"coldStart": "60s", "slo": {"ttftP99": "2s", "itlP99": "100ms"}},
        "batching": {"mode": "Adaptive", "maxNumSeqs": {"min": 16, "max": 256}, "maxNumBatchedTokens": 2048},
        "tier": "free",
    },
    # Llama-3-70B-class on 4 H100 (TP4), 180 s cold start. TTFT 2 s: the premium example's 800 ms
    # cannot be met for the code trace's long prompts (7.4k-token p99 prompt = 580 ms of prefill alone).
    "70b-dense-4xH100": {
        "model": {"name": "meta-llama/Llama-3.1-70B-Instruct", "parametersBillions": 70},
        "topology": {"tensorParallel": 4},
        "autoscaling": {"coldStart": "180s", "slo": {"ttftP99": "2s", "itlP99": "75ms"}},
        "batching": {"mode": "Adaptive", "maxNumSeqs": {"min": 8, "max": 128}, "maxNumBatchedTokens": 512},
        "tier": "premium",
    },
    # Mixtral-8x7B-class MoE, TP2 + expert parallel on 2 H100, 300 s cold start; standard-tier SLOs.
    "mixtral-moe-ep-2xH100": {
        "model": {"name": "mistralai/Mixtral-8x7B-Instruct-v0.1", "architecture": "moe", "parametersBillions": 46.7},
        "topology": {"tensorParallel": 2, "expertParallel": True},
        "autoscaling": {"coldStart": "300s", "slo": {"ttftP99": "2s", "itlP99": "100ms"}},
        "batching": {"mode": "Adaptive", "maxNumSeqs": {"min": 8, "max": 256}, "maxNumBatchedTokens": 1024},
        "tier": "standard",
    },
}


MAX_CONTEXT_TOKENS = 16_384
"""Every benchmark pool's maxContextTokens (the premium example pool's)."""
LONG_CONTEXT = {"median_prompt": 4000, "p99_prompt": 14_000, "max_context": MAX_CONTEXT_TOKENS}
"""The long-context family's parameters: p99 prompt near the context limit, and within reach of the 2 s
TTFT SLO on every pool (a 14k-token prompt takes 1.7 s of 512-token chunks on the 70B)."""


def make_pool(name: str) -> InferencePool:
    scenario = SCENARIOS[name]
    spec = {**scenario, "model": {**scenario["model"], "maxContextTokens": MAX_CONTEXT_TOKENS},
            "replicas": {"min": 1, "max": 64}}
    # Pool names are DNS-1035 labels (they name the Service): they start with a letter.
    return InferencePool.model_validate({"metadata": {"name": f"bench-{name.lower()}", "namespace": "bench"},
                                         "spec": spec})


def load(name: str, minutes: float | None) -> Trace:
    path = TRACES / TRACE_FILES[name]
    if not path.is_file():
        sys.exit(f"benchmark trace missing: {path} (the shared/ folder next to the repository is needed)")
    trace = load_trace(path)
    return truncate(trace, minutes * 60) if minutes else trace


def peak_minute_rate(trace: Trace) -> float:
    return max(trace.window_rates(WINDOW)[:-1] or trace.window_rates(WINDOW))


def stepwise_speed_ratio(pool: InferencePool, trace: Trace, requests: int = 3000) -> dict[str, float]:
    """Requests per CPU second of one replica driven by advance() (fast path) and by step() (one step at a time)."""
    spec = pool.spec
    profile = profile_for(spec)
    sample = trace.requests[:requests]
    rate = len(sample) / max(sample[-1].arrival, 1.0)
    capacity = replica_capacity(pool, trace, requests=1000).rate
    factor = rate / (0.8 * capacity)  # one replica at 80% of its SLO capacity
    arrivals = [Request(r.id, r.arrival * factor, r.prompt_tokens, r.output_tokens) for r in sample]
    speeds = {}
    for mode in ("fast", "stepwise"):
        replica = Replica(profile, max_num_seqs=spec.batching.maxNumSeqs.max,
                          max_num_batched_tokens=spec.batching.maxNumBatchedTokens, itl_slo=spec.autoscaling.slo.itlP99)
        started = time.process_time()
        for request in arrivals:
            if mode == "stepwise":
                while not replica.idle and replica.clock < request.arrival:
                    replica.step()
            replica.submit(request)
        if mode == "stepwise":
            while replica.step() is not None:
                pass
        else:
            replica.advance(math.inf)
        speeds[mode] = len(arrivals) / max(time.process_time() - started, 1e-9)
    return {"fast_req_per_cpu_s": speeds["fast"], "stepwise_req_per_cpu_s": speeds["stepwise"],
            "ratio": speeds["fast"] / speeds["stepwise"]}


def targets(rows: dict[str, dict[str, float]]) -> dict[str, bool]:
    """The issue-6 targets for the inferencefleet row."""
    ours, oracle, hpa = rows["inferencefleet"], rows["oracle"], rows["hpa"]
    return {
        "attainment >= 99%": ours["attainment"] >= 0.99,
        f"GPU-h <= {MOST_VS_ORACLE}x oracle": ours["gpu_hours"] <= MOST_VS_ORACLE * oracle["gpu_hours"],
        f"GPU-h <= {MOST_VS_HPA}x HPA at >= HPA attainment": ours["gpu_hours"] <= MOST_VS_HPA * hpa["gpu_hours"]
        and ours["attainment"] >= hpa["attainment"],
    }


SMOOTH = ("conv", "long-context", "diurnal-hour", "diurnal-10min", "ramp")
"""Smooth or conversation-like cases (issue 17's 99% at 1.15x the oracle target); the code trace is bursty
and the step load abrupt."""


def ran_to_max(peak: float, oracle_peak: float, most_replicas: int) -> bool:
    """Issue 17: a run reached replicas.max where the oracle needs less than half of it."""
    return peak >= most_replicas and oracle_peak < most_replicas / 2


def meets_smooth_target(attainment: float, vs_oracle: float) -> bool:
    """Issue 17's smooth-case target: >= 99% within both SLOs at <= MOST_VS_ORACLE x the oracle's GPU-hours."""
    return attainment >= 0.99 and vs_oracle <= MOST_VS_ORACLE


def open_world_targets(trace_name: str, rows: dict[str, dict[str, float]], most_replicas: int,
                       subject: str = "inferencefleet") -> dict[str, bool]:
    """Issue 17's targets for the ``subject`` row (the smooth-case one only where it applies)."""
    ours, oracle, keda = rows[subject], rows["oracle"], rows["keda"]
    out = {"no run to replicas.max where the oracle needs < half":
           not ran_to_max(ours["peak_replicas"], oracle["peak_replicas"], most_replicas)}
    if trace_name in SMOOTH:
        out[f">= 99% at <= {MOST_VS_ORACLE}x oracle"] = meets_smooth_target(
            ours["attainment"], ours["gpu_hours"] / oracle["gpu_hours"])
    out["KEDA never cheaper at >= our attainment"] = not (keda["gpu_hours"] < ours["gpu_hours"]
                                                          and keda["attainment"] >= ours["attainment"])
    return out


def tuning_seeds(parser: argparse.ArgumentParser, seeds: list[int] | None) -> list[int]:
    """``seeds`` (default: the tuning seeds); a report seed stops the parser, since tuning never looks at it."""
    for seed in seeds or ():
        if seed in REPORT_SEEDS:
            parser.error(f"--seed {seed} is a report seed ({', '.join(map(str, REPORT_SEEDS))}): tuning never "
                         f"looks at it; the tuning seeds are {', '.join(map(str, TUNING_SEEDS))}")
    return list(seeds or TUNING_SEEDS)


def allowed_gpu_hours(rows: dict[str, dict[str, float]]) -> float:
    """The most GPU-hours the cost targets allow."""
    return min(MOST_VS_ORACLE * rows["oracle"]["gpu_hours"], MOST_VS_HPA * rows["hpa"]["gpu_hours"])


def generated(family: str, peak_rate: float, seed: int) -> Trace:
    """One draw of a generated family at ``peak_rate`` req/s over FAMILY_MINUTES (envelopes take the
    conversation trace's lengths)."""
    seconds = FAMILY_MINUTES[family] * 60
    if family == "long-context":
        return scenarios.long_context(seconds, peak_rate, seed, **LONG_CONTEXT)
    lengths = load("conv", None)
    if family.startswith("diurnal"):
        return scenarios.diurnal(seconds, peak_rate, lengths, seed)
    if family == "step":
        return scenarios.step(seconds, peak_rate, lengths, seed, at=seconds / 3)
    return scenarios.ramp(seconds, peak_rate, lengths, seed, at=seconds / 6, ramp=seconds / 3)


def run_length(quick: bool, peak_replicas: int | None = None) -> tuple[float | None, int]:
    """Minutes of each trace (None: all of it) and the replicas its peak minute needs."""
    minutes = QUICK_MINUTES if quick else None
    return minutes, peak_replicas or (QUICK_PEAK_REPLICAS if quick else PEAK_REPLICAS)


def engines(errors: list[float] | None, seed: int) -> list[EngineOptions | None]:
    """The simulator's own engine at each error; without errors, the planner's own profile (None)."""
    return [None] if not errors else [EngineOptions(error=e, seed=seed) for e in errors]


@dataclass(frozen=True)
class PreparedCase:
    """One pool and its trace, rate-scaled so that the peak minute needs the asked replicas."""

    pool: InferencePool
    trace: Trace
    capacity: ReplicaCapacity
    """One replica's load-tested SLO capacity on the trace's length mix."""
    rate_scale: float

    def load_tested(self) -> PreparedCase:
        """The same case with the pool declaring its load test as spec.capacity.loadTest (what KEDA sizes on)."""
        return replace(self, pool=with_load_test(self.pool, self.capacity))


def prepare_case(scenario: str, trace_name: str, minutes: float | None, peak_replicas: int,
                 seed: int = 1, engine: EngineOptions | None = None) -> PreparedCase:
    pool = make_pool(scenario)
    if trace_name in FAMILIES:
        shapes = generated(trace_name, 1.0, seed)  # the length mix, for the load test
        capacity = replica_capacity(pool, shapes, engine=engine)
        trace = generated(trace_name, peak_replicas * capacity.rate, seed)
        trace = truncate(trace, minutes * 60) if minutes else trace
        scale = peak_replicas * capacity.rate
    else:
        raw = load(trace_name, minutes)
        capacity = replica_capacity(pool, raw, engine=engine)  # rate scaling keeps the length mix
        scale = peak_replicas * capacity.rate / peak_minute_rate(raw)
        trace = scale_rate(raw, scale, seed=seed)
    return PreparedCase(pool, trace, capacity, scale)


def policy_row(result: SimResult) -> dict[str, float]:
    """The reported figures of one policy's run on one pool."""
    p = result.pools[0]
    return {"gpu_hours": result.gpu_hours, "attainment": result.attainment, "ttft_p99_s": p.ttft_p99,
            "itl_p99_s": p.itl_p99, "peak_replicas": p.peak_replicas,
            "windows_meeting_slo": p.good_windows, "windows": p.windows}


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def run_case(scenario: str, trace_name: str, minutes: float | None, peak_replicas: int,
             seed: int = 1, engine: EngineOptions | None = None, from_minimum: bool = False) -> dict[str, Any]:
    prepared = prepare_case(scenario, trace_name, minutes, peak_replicas, seed, engine)
    pool, trace, capacity, scale = prepared.pool, prepared.trace, prepared.capacity, prepared.rate_scale
    key = pool_key(pool)
    wall, cpu = time.perf_counter(), time.process_time()
    results = run_policies([pool], {key: trace}, POLICIES, capacity={key: capacity}, engine=engine,
                           from_minimum=from_minimum)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows: dict[str, dict[str, Any]] = {r.policy: policy_row(r) for r in results}
    for row in rows.values():
        row["vs_hpa"] = row["gpu_hours"] / rows["hpa"]["gpu_hours"]
        row["vs_oracle"] = row["gpu_hours"] / rows["oracle"]["gpu_hours"]
    for r in results:
        rows[r.policy].update(replays=r.replays, replay_wall_s=r.wall_seconds,
                              requests_per_wall_s=r.requests_per_wall_second)
    simulated = sum(r.requests * r.replays for r in results)
    foresight = minute_foresight(pool, trace, capacity, engine=engine)
    return {
        "scenario": scenario, "trace": trace_name, "minutes": trace.duration / 60, "rate_scale": scale, "seed": seed,
        "engine_error": None if engine is None else engine.error, "from_minimum": from_minimum,
        "open_world_targets": open_world_targets(trace_name, rows, pool.spec.replicas.max),
        "open_world_targets_loadtest": open_world_targets(trace_name, rows, pool.spec.replicas.max,
                                                          "inferencefleet-loadtest"),
        "requests": len(trace.requests), "replica_capacity_rps": capacity.rate,
        "peak_replicas_needed": math.ceil(peak_minute_rate(trace) / capacity.rate),
        "policies": rows, "targets": targets(rows),
        "minute_foresight": {"gpu_hours": foresight.result.gpu_hours, "attainment": foresight.result.attainment,
                             "headroom": foresight.headroom, "replays": foresight.replays,
                             "vs_oracle": foresight.result.gpu_hours / rows["oracle"]["gpu_hours"],
                             "vs_hpa": foresight.result.gpu_hours / rows["hpa"]["gpu_hours"],
                             "beyond_targets": foresight.result.gpu_hours > allowed_gpu_hours(rows)},
        "simulated_requests": simulated, "wall_s": wall, "cpu_s": cpu,
        "requests_per_wall_s": simulated / wall, "requests_per_cpu_s": simulated / cpu,
    }


def print_case(case: dict[str, Any]) -> None:
    engine = "planner profile" if case["engine_error"] is None else f"engine error {case['engine_error']:+.0%}"
    print(f"\n== {case['scenario']} x {case['trace']}: {case['requests']} requests over {case['minutes']:.0f} min "
          f"(rate x{case['rate_scale']:.1f}, seed {case['seed']}, {engine}), replica SLO capacity {case['replica_capacity_rps']:.2f} req/s, "
          f"peak needs {case['peak_replicas_needed']} replicas")
    print(f"{'policy':>23} {'GPU-h':>8} {'met SLO':>8} {'TTFT p99':>9} {'ITL p99':>8} {'peak':>5} "
          f"{'vs HPA':>7} {'vs oracle':>9}")
    for name, row in case["policies"].items():
        print(f"{name:>23} {row['gpu_hours']:8.2f} {100 * row['attainment']:7.2f}% {row['ttft_p99_s']:8.2f}s "
              f"{1000 * row['itl_p99_s']:6.0f}ms {row['peak_replicas']:5d} {row['vs_hpa']:6.2f}x "
              f"{row['vs_oracle']:8.2f}x")
    print("issue-6 targets: " + "; ".join(f"{k}: {'PASS' if ok else 'FAIL'}" for k, ok in case["targets"].items()))
    for label, key in (("", "open_world_targets"), (", load-tested", "open_world_targets_loadtest")):
        print(f"issue-17 targets{label}: " + "; ".join(f"{k}: {'PASS' if ok else 'FAIL'}"
                                                      for k, ok in case[key].items()))
    seen = case["minute_foresight"]
    print(f"minute foresight (each minute's mean rate known a cold start ahead, {seen['headroom']:.2f}x its need): "
          f"{seen['gpu_hours']:.2f} GPU-h at {100 * seen['attainment']:.2f}% = {seen['vs_oracle']:.2f}x the oracle, "
          f"{seen['vs_hpa']:.2f}x HPA" + (": more than the targets allow, which take foresight inside the minute"
                                         if seen["beyond_targets"] else ""))
    rounds = case["policies"].get("oracle", {}).get("replays", 0)
    print(f"simulator: {case['simulated_requests']} requests replayed (oracle: {rounds} rounds) in {case['wall_s']:.1f} s "
          f"wall / {case['cpu_s']:.1f} s CPU = {case['requests_per_wall_s']:.0f} req/wall-s, "
          f"{case['requests_per_cpu_s']:.0f} req/CPU-s; per replay: "
          + ", ".join(f"{name} {row['requests_per_wall_s']:.0f}" for name, row in case["policies"].items()))


def speed_table(cases: list[dict[str, Any]], stepwise: float) -> dict[str, dict[str, float]]:
    """Requests per wall second of each policy's replays over all cases, and the ratio to the stepwise baseline."""
    table = {}
    for name in dict.fromkeys(n for c in cases for n in c["policies"]):
        rows = [c["policies"][name] for c in cases if name in c["policies"]]
        requests = sum(c["requests"] for c in cases if name in c["policies"])
        rate = requests / sum(r["replay_wall_s"] for r in rows)
        table[name] = {"requests_per_wall_s": rate, "vs_stepwise": rate / stepwise,
                       "slowest_case": min(r["requests_per_wall_s"] for r in rows)}
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="first 10 minutes of each trace, peak of 12 replicas")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append", help="only these scenarios")
    parser.add_argument("--trace", choices=sorted(TRACE_FILES) + list(FAMILIES), action="append",
                        help="only these traces or generated families (default: the Azure traces)")
    parser.add_argument("--engine-error", type=float, action="append",
                        help="run the simulator's own engine with true times x (1 + E); repeatable")
    parser.add_argument("--jsonl", type=Path, help="also append each case as one JSON line to this file")
    parser.add_argument("--from-minimum", action="store_true",
                        help="autoscalers start from replicas.min with no history")
    parser.add_argument("--peak-replicas", type=int, help="replicas the peak minute needs (10..40)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the rate scaling (default 1)")
    args = parser.parse_args()
    minutes, peak = run_length(args.quick, args.peak_replicas)
    if not 10 <= peak <= 40:
        parser.error(f"--peak-replicas: {peak} is outside 10..40")
    random.seed(0)
    speed = stepwise_speed_ratio(make_pool("8b-dense-1xH100"), load("conv", 20))
    if not args.json:
        print(f"replica fast path: {speed['fast_req_per_cpu_s']:.0f} req/CPU-s vs one step at a time "
              f"{speed['stepwise_req_per_cpu_s']:.0f} req/CPU-s: {speed['ratio']:.1f}x (same process)")
    cases = []
    for engine in engines(args.engine_error, args.seed):
        for scenario in args.scenario or SCENARIOS:
            for trace_name in args.trace or TRACE_FILES:
                case = run_case(scenario, trace_name, minutes, peak, args.seed, engine, args.from_minimum)
                cases.append(case)
                if args.jsonl:
                    append_jsonl(args.jsonl, case)
                if not args.json:
                    print_case(case)
                    sys.stdout.flush()
    total = {"simulated_requests": sum(c["simulated_requests"] for c in cases),
             "wall_s": sum(c["wall_s"] for c in cases), "cpu_s": sum(c["cpu_s"] for c in cases)}
    total["requests_per_wall_s"] = total["simulated_requests"] / total["wall_s"]
    total["requests_per_cpu_s"] = total["simulated_requests"] / total["cpu_s"]
    total["vs_stepwise"] = total["requests_per_cpu_s"] / speed["stepwise_req_per_cpu_s"]
    per_policy = speed_table(cases, speed["stepwise_req_per_cpu_s"])
    if args.json:
        print(json.dumps({"quick": args.quick, "speed": speed, "total": total, "per_policy": per_policy,
                          "cases": cases}, indent=2))
    else:
        passed = sum(all(c["targets"].values()) for c in cases)
        beyond = sum(c["minute_foresight"]["beyond_targets"] for c in cases)
        print(f"\nall targets met in {passed} of {len(cases)} scenario x trace cases; in {beyond}, even minute "
              f"foresight needs more GPU-hours for 99% than the targets allow")
        print(f"\nsimulator speed (target 20,000 req/s on one core; baseline: one replica stepped one step at a "
              f"time, {speed['stepwise_req_per_cpu_s']:.0f} req/CPU-s in this process)")
        print(f"{'runs':>23} {'req/wall-s':>11} {'slowest case':>13} {'vs stepwise':>12}")
        for name, row in per_policy.items():
            print(f"{name:>23} {row['requests_per_wall_s']:11.0f} {row['slowest_case']:13.0f} "
                  f"{row['vs_stepwise']:11.1f}x")
        print(f"all runs, the oracle's rounds included: {total['requests_per_wall_s']:.0f} req/wall-s, "
              f"{total['requests_per_cpu_s']:.0f} req/CPU-s ({total['vs_stepwise']:.1f}x stepwise): "
              f"{'PASS' if total['requests_per_wall_s'] >= 20_000 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
