"""Bursty traffic: each policy's own knob swept, and inferencefleet's curve against every baseline's.

Per case (a pool shape of autoscaling.py's SCENARIOS x a trace x a seed x an engine error, at
autoscaling.py's ``--quick`` length and peak: 10 minutes, peak minute at 12 replicas): the oracle
once (the reference GPU-hours, and every autoscaler's warm start as in autoscaling.py), then every
policy at each value of its one knob:

- inferencefleet: ``spec.autoscaling.behavior.targetUtilization`` (default 0.85);
- HPA: the target of waiting requests per pod (default 1);
- KEDA: the threshold per replica as a fraction of the load-tested SLO capacity (default 0.85);
- KPA: the target concurrency, the concurrency one replica carries at that fraction of its
  load-tested capacity (Little's law; default 0.85);
- static: the replicas as a fraction of the oracle's peak (1.0: static peak provisioning).

Each policy's settings make a curve of requests meeting both SLOs against GPU-hours;
``sim.frontier.compare`` tells, per baseline, whether inferencefleet's curve lies on or above it
(for every baseline setting, some inferencefleet setting costs no more and meets at least as many
requests). Prints each curve and the verdicts; ``--plot DIR`` draws one PNG per case.

On a smooth or conversation-like trace (autoscaling.py's ``SMOOTH``), each case also lists the
settings of every policy that meet issue 17's smooth-case target (>= 99% of requests within both
SLOs at <= 1.15x the oracle's GPU-hours), and the summary counts the cases each policy meets at
its best setting and those no reactive policy meets at any: the knobs are swept per case, so this
bounds what any one default of that policy could meet.

    .venv/bin/python benchmarks/frontier.py [--scenario NAME ...] [--trace NAME ...] [--seed N]
        [--engine-error E ...] [--json] [--jsonl PATH] [--plot DIR]

Defaults: every pool shape x the Azure code trace (the bursty case) x engine error 0, report seed 11.
Nothing is tuned here: a change made after reading these figures is tuned on the tuning seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoscaling import (
    FAMILIES,
    MOST_VS_ORACLE,
    REPORT_SEEDS,
    SCENARIOS,
    SMOOTH,
    TRACE_FILES,
    PreparedCase,
    append_jsonl,
    engines,
    meets_smooth_target,
    prepare_case,
    run_length,
)
from sensitivity import run_oracle

from inferencefleet.api.v1alpha1 import BehaviorSpec, InferencePool
from inferencefleet.planner.types import PoolKey, pool_key
from inferencefleet.sim.baselines import HpaPolicy, KedaPolicy, KpaPolicy, StaticPolicy
from inferencefleet.sim.compare import oracle_start
from inferencefleet.sim.engine import EngineOptions
from inferencefleet.sim.fleet import Policy, simulate
from inferencefleet.sim.frontier import CurveComparison, Setting, compare
from inferencefleet.sim.oracle import OracleOutcome
from inferencefleet.sim.planner_policy import InferenceFleetPolicy

OURS = "inferencefleet"
DEFAULT_TARGET_UTILIZATION = BehaviorSpec.model_fields["targetUtilization"].default
FRACTIONS = (0.5, 0.6, 0.7, 0.85, 1.0, 1.2)
"""Fractions of the load-tested SLO capacity swept for KEDA and KPA (0.85: their default)."""


@dataclass(frozen=True)
class Run:
    """One policy set up for one knob value: the pool it sees, the policy, the replicas it starts with."""

    pool: InferencePool
    policy: Policy
    initial: dict[PoolKey, int]


@dataclass(frozen=True)
class Knob:
    label: str
    values: tuple[float, ...]
    setup: Callable[[PreparedCase, OracleOutcome, float], Run]


def _target_utilization(pool: InferencePool, value: float) -> InferencePool:
    autoscaling = pool.spec.autoscaling
    behavior = autoscaling.behavior.model_copy(update={"targetUtilization": value})
    spec = pool.spec.model_copy(update={"autoscaling": autoscaling.model_copy(update={"behavior": behavior})})
    return pool.model_copy(update={"spec": spec})


def _ours(case: PreparedCase, reference: OracleOutcome, value: float) -> Run:
    return Run(_target_utilization(case.pool, value), InferenceFleetPolicy(), oracle_start(reference))


def _hpa(case: PreparedCase, reference: OracleOutcome, value: float) -> Run:
    return Run(case.pool, HpaPolicy(value), oracle_start(reference))


def _keda(case: PreparedCase, reference: OracleOutcome, value: float) -> Run:
    return Run(case.pool, KedaPolicy({pool_key(case.pool): value * case.capacity.rate}), oracle_start(reference))


def _kpa(case: PreparedCase, reference: OracleOutcome, value: float) -> Run:
    capacity = case.capacity  # its concurrency is measured at capacity.utilization x its rate
    target = capacity.concurrency * value / capacity.utilization
    return Run(case.pool, KpaPolicy({pool_key(case.pool): target}), oracle_start(reference))


def _static(case: PreparedCase, reference: OracleOutcome, value: float) -> Run:
    key = pool_key(case.pool)
    count = max(1, round(value * reference.peak[key]))
    return Run(case.pool, StaticPolicy({key: count}), {key: count})


KNOBS: dict[str, Knob] = {
    OURS: Knob("behavior.targetUtilization", tuple(sorted({0.4, 0.5, 0.6, 0.7, DEFAULT_TARGET_UTILIZATION, 0.95, 1.0})),
               _ours),
    "hpa": Knob("waiting requests per pod", (0.25, 0.5, 1.0, 2.0, 4.0, 8.0), _hpa),
    "keda": Knob("threshold / load-tested capacity", FRACTIONS, _keda),
    "kpa": Knob("concurrency at this fraction of capacity", FRACTIONS, _kpa),
    "static": Knob("replicas / oracle peak", (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2), _static),
}


def curve(name: str, case: PreparedCase, reference: OracleOutcome, engine: EngineOptions | None) -> list[Setting]:
    """The policy's settings, each run once over the case's trace."""
    settings = []
    for value in KNOBS[name].values:
        run = KNOBS[name].setup(case, reference, value)
        result = simulate([run.pool], {pool_key(run.pool): case.trace}, run.policy, horizon=case.trace.duration,
                          initial_replicas=run.initial, engine=engine)
        settings.append(Setting(value, result.gpu_hours, result.attainment))
    return settings


def verdict(comparison: CurveComparison) -> dict[str, Any]:
    def pair(baseline: Setting, ours: Setting) -> dict[str, float]:
        return {"value": baseline.value, "ours": ours.value}
    return {"on_or_above": comparison.on_or_above, "matched": [pair(*p) for p in comparison.matched],
            "above": [pair(*p) for p in comparison.above], "outside": [s.value for s in comparison.outside]}


def run_case(scenario: str, trace_name: str, seed: int, engine: EngineOptions | None) -> dict[str, Any]:
    started = time.perf_counter()
    case = prepare_case(scenario, trace_name, *run_length(quick=True), seed, engine)
    reference = run_oracle(case, engine)
    curves = {name: curve(name, case, reference, engine) for name in KNOBS}
    verdicts = {name: verdict(compare(curves[OURS], settings)) for name, settings in curves.items() if name != OURS}
    oracle_gpu_hours = reference.result.gpu_hours
    return {"scenario": scenario, "trace": trace_name, "seed": seed,
            "engine_error": None if engine is None else engine.error,
            "minutes": case.trace.duration / 60, "requests": len(case.trace.requests),
            "replica_capacity_rps": case.capacity.rate,
            "oracle": {"gpu_hours": oracle_gpu_hours, "attainment": reference.result.attainment},
            "curves": {name: [{"value": s.value, "gpu_hours": s.gpu_hours, "vs_oracle": s.gpu_hours / oracle_gpu_hours,
                               "attainment": s.attainment} for s in settings] for name, settings in curves.items()},
            "verdicts": verdicts, "on_or_above_every_baseline": all(v["on_or_above"] for v in verdicts.values()),
            "runs": 1 + sum(len(k.values) for k in KNOBS.values()), "wall_s": time.perf_counter() - started}


def smooth_target_settings(case: dict[str, Any]) -> dict[str, list[float]] | None:
    """Per policy, the knob values that meet issue 17's smooth-case target on this case (None: not a smooth
    case). Each baseline's knob is swept per case, so an empty list means no setting of that policy, however
    tuned, meets the target here."""
    if case["trace"] not in SMOOTH:
        return None
    return {name: [s["value"] for s in settings if meets_smooth_target(s["attainment"], s["vs_oracle"])]
            for name, settings in case["curves"].items()}


def error_label(case: dict[str, Any]) -> str:
    return "planner profile" if case["engine_error"] is None else f"engine error {case['engine_error']:+.0%}"


def print_case(case: dict[str, Any]) -> None:
    print(f"\n== {case['scenario']} x {case['trace']}, seed {case['seed']}, {error_label(case)}: "
          f"{case['requests']} requests over {case['minutes']:.0f} min; oracle {case['oracle']['gpu_hours']:.2f} GPU-h "
          f"at {100 * case['oracle']['attainment']:.2f}%; {case['runs']} runs in {case['wall_s']:.0f} s")
    for name, settings in case["curves"].items():
        points = ", ".join(f"{s['value']:g}: {s['vs_oracle']:.2f}x {100 * s['attainment']:.1f}%" for s in settings)
        print(f"  {name:>14} ({KNOBS[name].label}) {points}")
    for name, found in case["verdicts"].items():
        if found["on_or_above"]:
            state = "ours on or above"
        else:
            state = "ABOVE ours at " + ", ".join(f"{p['value']:g} (ours at most {p['ours']:g})" for p in found["above"])
        outside = f"; cheaper than all of ours: {', '.join(f'{v:g}' for v in found['outside'])}" if found["outside"] else ""
        print(f"  vs {name}: {state} ({len(found['matched'])} matched{outside})")
    meeting = smooth_target_settings(case)
    if meeting is not None:
        found = "; ".join(f"{name} at {', '.join(f'{v:g}' for v in values)}" for name, values in meeting.items() if values)
        print(f"  >= 99% at <= {MOST_VS_ORACLE}x the oracle: {found or 'no setting of any policy'}")
    sys.stdout.flush()


def print_smooth_summary(cases: list[dict[str, Any]]) -> None:
    """How many smooth cases each policy meets the smooth-case target in at its best setting, and in how many
    no reactive policy (all but static, whose count is a fraction of the oracle's peak) meets it at all."""
    meeting = [found for found in map(smooth_target_settings, cases) if found is not None]
    if not meeting:
        return
    print(f"smooth cases where some setting meets >= 99% at <= {MOST_VS_ORACLE}x the oracle, of {len(meeting)}: "
          + ", ".join(f"{name} {sum(bool(found[name]) for found in meeting)}" for name in KNOBS))
    reactive = [name for name in KNOBS if name != "static"]
    print(f"  by no reactive policy at any setting: {sum(not any(found[n] for n in reactive) for found in meeting)}; "
          f"by inferencefleet at its default ({DEFAULT_TARGET_UTILIZATION:g}): "
          f"{sum(DEFAULT_TARGET_UTILIZATION in found[OURS] for found in meeting)}")


def plot(case: dict[str, Any], folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, settings in case["curves"].items():
        ordered = sorted(settings, key=lambda s: s["vs_oracle"])
        axes.plot([s["vs_oracle"] for s in ordered], [100 * s["attainment"] for s in ordered], marker="o",
                  linewidth=2.5 if name == OURS else 1.2, label=name)
    axes.plot([1.0], [100 * case["oracle"]["attainment"]], marker="*", markersize=14, linestyle="", label="oracle")
    axes.set_xlabel("GPU-hours / oracle's")
    axes.set_ylabel("requests meeting both SLOs (%)")
    axes.set_title(f"{case['scenario']} x {case['trace']}, seed {case['seed']}, {error_label(case)}", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    folder.mkdir(parents=True, exist_ok=True)
    error = "profile" if case["engine_error"] is None else f"{case['engine_error']:+.2f}"
    path = folder / f"frontier-{case['scenario']}-{case['trace']}-seed{case['seed']}-error{error}.png"
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append", help="only these pool shapes")
    parser.add_argument("--trace", choices=sorted(TRACE_FILES) + list(FAMILIES), action="append",
                        help="traces or generated families (default: code)")
    parser.add_argument("--seed", type=int, default=REPORT_SEEDS[0], help=f"default {REPORT_SEEDS[0]}")
    parser.add_argument("--engine-error", type=float, action="append",
                        help="the simulator's own engine with true times x (1 + E); repeatable (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--jsonl", type=Path, help="also append each case as one JSON line to this file")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="write one PNG per case into DIR")
    args = parser.parse_args()
    started = time.perf_counter()
    cases = []
    for engine in engines(args.engine_error or [0.0], args.seed):
        for scenario in args.scenario or SCENARIOS:
            for trace_name in args.trace or ["code"]:
                case = run_case(scenario, trace_name, args.seed, engine)
                cases.append(case)
                if args.jsonl:
                    append_jsonl(args.jsonl, case)
                if args.plot:
                    case["plot"] = str(plot(case, args.plot))
                if not args.json:
                    print_case(case)
    wall = time.perf_counter() - started
    met = sum(c["on_or_above_every_baseline"] for c in cases)
    if args.json:
        print(json.dumps({"cases": cases, "wall_s": wall, "on_or_above_every_baseline": met}, indent=2))
    else:
        print(f"\ninferencefleet's curve on or above every baseline's: {met} of {len(cases)} cases; "
              f"{sum(c['runs'] for c in cases)} runs in {wall:.0f} s")
        print_smooth_summary(cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
