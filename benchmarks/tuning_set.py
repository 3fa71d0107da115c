"""The planner scored on the tuning set: the figures docs/tuning.md compares before -> after.

Per case (a pool shape of autoscaling.py's SCENARIOS x a trace or generated family x a tuning seed x
an engine error, at autoscaling.py's ``--quick`` length): the oracle, then the planner with
DEFAULT_TUNING or the values ``--set`` changes (``--load-test``: and given the load test KEDA sizes on,
as autoscaling.py's inferencefleet-loadtest row), started warm as in autoscaling.py. Prints one line
per case, then the summary docs/tuning.md uses:

- smooth cases (``autoscaling.SMOOTH``) with >= 99% of requests within both SLOs at <= 1.15x the
  oracle's GPU-hours;
- the mean share of requests within both SLOs and the mean GPU-hours over the oracle's, apart for the
  smooth cases and the others (the bursty code trace, the step), so that a change which helps one kind
  cannot hide what it costs the other;
- runs that reach ``replicas.max`` where the oracle needs less than half of it.

``--compare OLD.jsonl`` (an earlier run's ``--jsonl``) prints the cases that moved, before -> after,
and both summaries. The oracle depends only on the simulator and the case, so ``--oracle-cache FILE``
keeps its figures between runs, keyed by the case and a digest of the simulator's and the API's
source: a planner change then costs only the planner's runs (about 3 minutes for the 42 cases of
one engine error, in one process).

    .venv/bin/python benchmarks/tuning_set.py [--engine-error E ...] [--scenario NAME ...]
        [--trace NAME ...] [--seed N ...] [--set PATH=VALUE ...] [--load-test] [--oracle-cache FILE]
        [--jsonl FILE] [--compare FILE]

Only the tuning set: the report seeds (11, 12) are refused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import mean
from typing import Any

from autoscaling import (
    FAMILIES,
    SCENARIOS,
    SMOOTH,
    TRACE_FILES,
    TUNING_SEEDS,
    PreparedCase,
    append_jsonl,
    meets_smooth_target,
    prepare_case,
    ran_to_max,
    run_length,
    tuning_seeds,
)
from sensitivity import run_oracle, run_planner

import inferencefleet
from inferencefleet.planner.tuning import DEFAULT_TUNING, PlannerTuning
from inferencefleet.planner.types import pool_key
from inferencefleet.sim.compare import oracle_start
from inferencefleet.sim.engine import EngineOptions

TRACES = tuple(TRACE_FILES) + FAMILIES
MOVED_VS_ORACLE = 0.005
MOVED_ATTAINMENT = 0.0005
"""A case moved when its GPU-hours over the oracle's or its attainment changed by more than these."""
SOURCES = ("sim", "api")
"""Packages the oracle's figures depend on: a change in any of their files invalidates the cache."""


@dataclass(frozen=True)
class Reference:
    """What the planner's run is scored against: the oracle's GPU-hours and peak, and its start."""

    gpu_hours: float
    peak_replicas: int
    start_replicas: int


def source_digest() -> str:
    """Digest of the simulator's and the API's source, and of autoscaling.py (which builds the cases)."""
    package = Path(inferencefleet.__file__).parent
    files = sorted(p for name in SOURCES for p in (package / name).rglob("*.py"))
    files.append(Path(__file__).with_name("autoscaling.py"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class OracleCache:
    """The oracle's figures per case, in a JSON file when ``path`` is given."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.digest = path, source_digest()
        stored = json.loads(path.read_text()) if path is not None and path.exists() else {}
        self.entries: dict[str, dict[str, Any]] = stored.get(self.digest, {}) if isinstance(stored, dict) else {}

    def get(self, key: str) -> Reference | None:
        entry = self.entries.get(key)
        return None if entry is None else Reference(**entry)

    def put(self, key: str, reference: Reference) -> None:
        self.entries[key] = asdict(reference)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({self.digest: self.entries}))


def reference(cache: OracleCache, prepared: PreparedCase, scenario: str, trace_name: str, seed: int,
              engine: EngineOptions) -> Reference:
    key = f"{scenario}|{trace_name}|{seed}|{engine.error}"
    found = cache.get(key)
    if found is None:
        outcome = run_oracle(prepared, engine)
        found = Reference(outcome.result.gpu_hours, outcome.result.pools[0].peak_replicas,
                          next(iter(oracle_start(outcome).values())))
        cache.put(key, found)
    return found


def run_case(scenario: str, trace_name: str, seed: int, engine: EngineOptions, tuning: PlannerTuning,
             cache: OracleCache, load_test: bool = False) -> dict[str, Any]:
    prepared = prepare_case(scenario, trace_name, *run_length(quick=True), seed, engine)
    ref = reference(cache, prepared, scenario, trace_name, seed, engine)
    planned = prepared.load_tested() if load_test else prepared
    result = run_planner(planned, engine, {pool_key(prepared.pool): ref.start_replicas}, tuning)
    return {"scenario": scenario, "trace": trace_name, "seed": seed, "engine_error": engine.error,
            "vs_oracle": result.gpu_hours / ref.gpu_hours, "attainment": result.attainment,
            "peak_replicas": result.pools[0].peak_replicas, "oracle_peak_replicas": ref.peak_replicas,
            "replicas_max": prepared.pool.spec.replicas.max}


def meets(case: dict[str, Any]) -> bool:
    return meets_smooth_target(case["attainment"], case["vs_oracle"])


def runs_to_max(case: dict[str, Any]) -> bool:
    return ran_to_max(case["peak_replicas"], case["oracle_peak_replicas"], case["replicas_max"])


def means(cases: list[dict[str, Any]]) -> dict[str, float] | None:
    """Mean attainment and mean GPU-hours over the oracle's of ``cases`` (None without any)."""
    if not cases:
        return None
    return {"attainment": mean(c["attainment"] for c in cases), "vs_oracle": mean(c["vs_oracle"] for c in cases)}


def summary(cases: list[dict[str, Any]]) -> dict[str, Any]:
    smooth = [c for c in cases if c["trace"] in SMOOTH]
    others = [c for c in cases if c["trace"] not in SMOOTH]
    return {"smooth": len(smooth), "smooth_met": sum(map(meets, smooth)), "others": len(others),
            "smooth_means": means(smooth), "other_means": means(others), "runs_to_max": sum(map(runs_to_max, cases))}


def case_key(case: dict[str, Any]) -> tuple[Any, ...]:
    return case["scenario"], case["trace"], case["seed"], case["engine_error"]


def describe(case: dict[str, Any]) -> str:
    return f"{case['scenario']:<22} {case['trace']:<14} seed {case['seed']}  error {case['engine_error']:+.0%}"


def figures(case: dict[str, Any]) -> str:
    return f"{case['vs_oracle']:.2f}x {100 * case['attainment']:6.2f}% peak {case['peak_replicas']}"


def print_summary(label: str, totals: dict[str, Any]) -> None:
    def described(kind: str, count: int, found: dict[str, float] | None) -> str:
        return "" if found is None else (f"; {count} {kind} cases: mean attainment {100 * found['attainment']:.2f}%, "
                                         f"mean GPU-h {found['vs_oracle']:.3f}x the oracle's")
    print(f"{label}: smooth cases met {totals['smooth_met']} of {totals['smooth']}"
          f"{described('smooth', totals['smooth'], totals['smooth_means'])}"
          f"{described('bursty or stepped', totals['others'], totals['other_means'])}"
          f"; runs to replicas.max {totals['runs_to_max']}")


def compare(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> None:
    """The cases of ``after`` that moved against ``before``, and both summaries over the common cases."""
    old = {case_key(c): c for c in before}
    common = [c for c in after if case_key(c) in old]
    print(f"\nagainst the earlier run ({len(common)} common cases), before -> after:")
    for new in common:
        was = old[case_key(new)]
        if (abs(new["vs_oracle"] - was["vs_oracle"]) <= MOVED_VS_ORACLE
                and abs(new["attainment"] - was["attainment"]) <= MOVED_ATTAINMENT):
            continue
        mark = ""
        if new["trace"] in SMOOTH and meets(new) != meets(was):
            mark = "  now meets" if meets(new) else "  no longer meets"
        print(f"{describe(new)}  {figures(was)} -> {figures(new)}{mark}")
    print_summary("before", summary([old[case_key(c)] for c in common]))
    print_summary("after ", summary(common))


def tuning_from(settings: list[str], parser: argparse.ArgumentParser) -> PlannerTuning:
    tuning = DEFAULT_TUNING
    for setting in settings:
        path, _, value = setting.partition("=")
        if path not in DEFAULT_TUNING.values():
            parser.error(f"--set {setting}: no tuning value {path!r}; the values are "
                         f"{', '.join(DEFAULT_TUNING.values())}")
        try:
            tuning = tuning.with_value(path, float(value))
        except ValueError as error:
            parser.error(f"--set {setting}: {error}")
    return tuning


def read_jsonl(path: Path, parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as error:
        parser.error(f"--compare {path}: {error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append", help="only these pool shapes")
    parser.add_argument("--trace", choices=TRACES, action="append", help="only these traces or generated families")
    parser.add_argument("--seed", type=int, action="append",
                        help=f"only these tuning seeds (default: {', '.join(map(str, TUNING_SEEDS))})")
    parser.add_argument("--engine-error", type=float, action="append",
                        help="the simulator's own engine with true times x (1 + E); repeatable (default 0)")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="run the planner with this tuning value changed (a dotted path of PlannerTuning)")
    parser.add_argument("--load-test", action="store_true",
                        help="give the planner the load test KEDA sizes on, as spec.capacity.loadTest")
    parser.add_argument("--oracle-cache", type=Path, help="keep the oracle's figures in this JSON file")
    parser.add_argument("--jsonl", type=Path, help="also append each case as one JSON line to this file")
    parser.add_argument("--compare", type=Path, help="an earlier run's --jsonl to compare against")
    args = parser.parse_args()
    seeds = tuning_seeds(parser, args.seed)
    tuning = tuning_from(args.set, parser)
    before = read_jsonl(args.compare, parser) if args.compare else None
    if args.jsonl:
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
    cache = OracleCache(args.oracle_cache)
    started = time.perf_counter()
    cases = []
    for engine_error in args.engine_error or [0.0]:
        for seed in seeds:
            engine = EngineOptions(error=engine_error, seed=seed)
            for trace_name in args.trace or TRACES:
                for scenario in args.scenario or SCENARIOS:
                    case = run_case(scenario, trace_name, seed, engine, tuning, cache, args.load_test)
                    cases.append(case)
                    if args.jsonl:
                        append_jsonl(args.jsonl, case)
                    print(f"{describe(case)}  {figures(case)}", flush=True)
    print()
    print_summary("this run", summary(cases))
    if before is not None:
        compare(before, cases)
    print(f"\n{len(cases)} cases in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
