"""Sensitivity of the planner's tuning: every value of ``PlannerTuning`` halved and raised by half.

Per case (a pool shape of autoscaling.py's SCENARIOS x a trace x a seed x an engine error, at
autoscaling.py's ``--quick`` length and peak: 10 minutes, peak minute at 12 replicas): the oracle
once (the reference GPU-hours), the planner with DEFAULT_TUNING once, then the planner alone with
each value of ``DEFAULT_TUNING.values()`` at x0.5 and x1.5; a variant the tuning rejects (e.g.
correction.low above 1) is reported as not swept. Prints per value and factor the mean and largest
change over the cases against the default tuning, in GPU-hours over the oracle's and in the share of
requests meeting both SLOs, most influential first (largest change in units of 0.01x and 0.1 pp;
below both: no effect on these cases), then the runs and their speed.

    .venv/bin/python benchmarks/sensitivity.py [--scenario NAME ...] [--trace NAME ...] [--seed N ...]
        [--engine-error E ...] [--value PATH ...] [--load-test] [--json] [--jsonl PATH]

Defaults: every pool shape x ``conv`` and ``ramp`` x seeds 1 and 2 x the simulator's own engine at
error 0. Only the tuning set: the report seeds (11, 12) are refused. Every run starts as in
autoscaling.py, warm with the replicas the oracle has ready at t = 0, so the default tuning's figures
are autoscaling.py's inferencefleet row for the same case.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from statistics import mean
from typing import Any

from autoscaling import (
    FAMILIES,
    SCENARIOS,
    TRACE_FILES,
    TUNING_SEEDS,
    PreparedCase,
    append_jsonl,
    engines,
    policy_row,
    prepare_case,
    run_length,
    tuning_seeds,
)

from inferencefleet.planner.tuning import DEFAULT_TUNING, PlannerTuning
from inferencefleet.planner.types import PoolKey, pool_key
from inferencefleet.sim.compare import oracle_start
from inferencefleet.sim.engine import EngineOptions
from inferencefleet.sim.fleet import SimResult, simulate
from inferencefleet.sim.oracle import OracleOutcome, oracle
from inferencefleet.sim.planner_policy import InferenceFleetPolicy

TRACES = ("conv", "ramp")
"""The default traces: the Azure conversation trace and the generated ramp family."""
FACTORS = (0.5, 1.5)
NO_EFFECT_VS_ORACLE = 0.01
NO_EFFECT_ATTAINMENT = 0.001
"""Changes below both (0.01x the oracle's GPU-hours, 0.1 percentage points) are no effect."""


def run_oracle(prepared: PreparedCase, engine: EngineOptions | None) -> OracleOutcome:
    key = pool_key(prepared.pool)
    return oracle([prepared.pool], {key: prepared.trace}, {key: prepared.capacity}, engine=engine)


def run_planner(prepared: PreparedCase, engine: EngineOptions | None, start: dict[PoolKey, int],
                tuning: PlannerTuning = DEFAULT_TUNING) -> SimResult:
    """The inferencefleet policy started as ``sim.compare.run_policies`` starts it beside the oracle:
    with ``start``, the replicas the oracle has ready at t = 0 (``oracle_start``; without them, it would
    start with the first minutes' planned need instead, and its figures would not be autoscaling.py's)."""
    return simulate([prepared.pool], {pool_key(prepared.pool): prepared.trace}, InferenceFleetPolicy(tuning=tuning),
                    horizon=prepared.trace.duration, initial_replicas=start, engine=engine)


def planner_row(result: SimResult, reference: OracleOutcome) -> dict[str, float]:
    return {**policy_row(result), "vs_oracle": result.gpu_hours / reference.result.gpu_hours}


def sweep(prepared: PreparedCase, engine: EngineOptions | None, path: str, factor: float,
          reference: OracleOutcome, default: dict[str, float]) -> dict[str, Any]:
    """The planner with the value at ``path`` times ``factor``, and its change against the default."""
    value = DEFAULT_TUNING.values()[path] * factor
    record: dict[str, Any] = {"path": path, "factor": factor, "value": value}
    try:
        tuning = DEFAULT_TUNING.with_value(path, value)
    except ValueError as error:
        return {**record, "not_swept": str(error)}
    row = planner_row(run_planner(prepared, engine, oracle_start(reference), tuning), reference)
    return {**record, **row, "vs_oracle_change": row["vs_oracle"] - default["vs_oracle"],
            "attainment_change": row["attainment"] - default["attainment"]}


def run_case(scenario: str, trace_name: str, seed: int, engine: EngineOptions | None,
             paths: list[str], load_test: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    prepared = prepare_case(scenario, trace_name, *run_length(quick=True), seed, engine)
    reference = run_oracle(prepared, engine)
    if load_test:
        prepared = prepared.load_tested()
    default = planner_row(run_planner(prepared, engine, oracle_start(reference)), reference)
    variants = [sweep(prepared, engine, path, factor, reference, default) for path in paths for factor in FACTORS]
    return {"scenario": scenario, "trace": trace_name, "seed": seed,
            "engine_error": None if engine is None else engine.error,
            "minutes": prepared.trace.duration / 60, "requests": len(prepared.trace.requests),
            "rate_scale": prepared.rate_scale, "replica_capacity_rps": prepared.capacity.rate,
            "oracle": {**policy_row(reference.result), "replays": reference.rounds}, "default": default,
            "variants": variants, "runs": 2 + sum("not_swept" not in v for v in variants),
            "wall_s": time.perf_counter() - started}


def changes(sweeps: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and largest change over the cases of one value at one factor."""
    swept = [s for s in sweeps if "not_swept" not in s]
    if not swept:
        return {"not_swept": sweeps[0]["not_swept"]}
    cost = [s["vs_oracle_change"] for s in swept]
    attainment = [s["attainment_change"] for s in swept]
    largest_cost, largest_attainment = max(cost, key=abs), max(attainment, key=abs)
    return {"mean_vs_oracle_change": mean(cost), "largest_vs_oracle_change": largest_cost,
            "mean_attainment_change": mean(attainment), "largest_attainment_change": largest_attainment,
            "influence": max(abs(largest_cost) / NO_EFFECT_VS_ORACLE, abs(largest_attainment) / NO_EFFECT_ATTAINMENT)}


def influences(cases: list[dict[str, Any]], paths: list[str]) -> list[dict[str, Any]]:
    """Per value: its changes at each factor, most influential first."""
    rows = []
    for path in paths:
        by_factor = {f"x{factor}": changes([v for c in cases for v in c["variants"]
                                             if v["path"] == path and v["factor"] == factor])
                     for factor in FACTORS}
        influence = max(c.get("influence", 0.0) for c in by_factor.values())
        rows.append({"path": path, "default": DEFAULT_TUNING.values()[path], **by_factor,
                     "influence": influence, "no_effect": influence < 1})
    return sorted(rows, key=lambda row: -row["influence"])


def print_case(case: dict[str, Any]) -> None:
    default = case["default"]
    print(f"== {case['scenario']} x {case['trace']}, seed {case['seed']}, engine error {case['engine_error']:+.0%}: "
          f"{case['requests']} requests over {case['minutes']:.0f} min; oracle {case['oracle']['gpu_hours']:.2f} GPU-h; "
          f"default tuning {default['vs_oracle']:.2f}x the oracle, {100 * default['attainment']:.2f}% met SLOs; "
          f"{case['runs']} runs in {case['wall_s']:.0f} s")
    sys.stdout.flush()


def cells(change: dict[str, Any]) -> tuple[str, str]:
    if "not_swept" in change:
        return "not swept", "not swept"
    return (f"{change['mean_vs_oracle_change']:+.3f}x / {change['largest_vs_oracle_change']:+.3f}x",
            f"{100 * change['mean_attainment_change']:+.2f} / {100 * change['largest_attainment_change']:+.2f} pp")


def note(row: dict[str, Any]) -> str:
    skipped = [f"{factor} not swept: {row[factor]['not_swept']}" for factor in (f"x{f}" for f in FACTORS)
               if "not_swept" in row[factor]]
    return "; ".join((["no effect on these cases"] if row["no_effect"] else []) + skipped)


def print_influences(rows: list[dict[str, Any]], cases: int) -> None:
    print(f"\nchange against the default tuning, mean / largest over {cases} cases "
          "(GPU-hours over the oracle's; requests meeting both SLOs), most influential first")
    header = "".join(f"{f'x{f} GPU-h vs oracle':>22} {f'x{f} met SLOs':>20}" for f in FACTORS)
    print(f"{'value':<36} {'default':>9}{header}  note")
    for row in rows:
        columns = "".join(f"{cost:>22} {attainment:>20}" for cost, attainment in
                          (cells(row[f"x{f}"]) for f in FACTORS))
        print(f"{row['path']:<36} {row['default']:>9g}{columns}  {note(row)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append", help="only these pool shapes")
    parser.add_argument("--trace", choices=sorted(TRACE_FILES) + list(FAMILIES), action="append",
                        help=f"only these traces or generated families (default: {', '.join(TRACES)})")
    parser.add_argument("--seed", type=int, action="append",
                        help=f"seeds of the rate scaling and of the engine (default: the tuning seeds "
                             f"{', '.join(map(str, TUNING_SEEDS))})")
    parser.add_argument("--engine-error", type=float, action="append",
                        help="the simulator's own engine with true times x (1 + E); repeatable (default 0)")
    parser.add_argument("--value", choices=list(DEFAULT_TUNING.values()), action="append", metavar="PATH",
                        help="only these tuning values (dotted paths; default: all)")
    parser.add_argument("--load-test", action="store_true",
                        help="give the planner the load test KEDA sizes on, as spec.capacity.loadTest "
                             "(scale.climb_margin_per_minute only acts then)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--jsonl", type=Path, help="also append each case as one JSON line to this file")
    args = parser.parse_args()
    seeds = tuning_seeds(parser, args.seed)
    paths = args.value or list(DEFAULT_TUNING.values())
    started = time.perf_counter()
    cases = []
    for seed in seeds:
        for engine in engines(args.engine_error or [0.0], seed):
            for scenario in args.scenario or SCENARIOS:
                for trace_name in args.trace or TRACES:
                    case = run_case(scenario, trace_name, seed, engine, paths, args.load_test)
                    cases.append(case)
                    if args.jsonl:
                        append_jsonl(args.jsonl, case)
                    if not args.json:
                        print_case(case)
    wall = time.perf_counter() - started
    runs = sum(c["runs"] for c in cases)
    total = {"cases": len(cases), "runs": runs, "wall_s": wall, "runs_per_wall_s": runs / wall}
    rows = influences(cases, paths)
    if args.json:
        print(json.dumps({"total": total, "influences": rows, "cases": cases}, indent=2))
    else:
        print_influences(rows, len(cases))
        print(f"\n{runs} runs (per case the oracle, the default tuning and each variant swept) in {wall:.0f} s "
              f"wall = {total['runs_per_wall_s']:.3f} runs per wall second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
