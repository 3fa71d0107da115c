"""Run several policies on the same pools and traces, with fair, shared set-up.

Every policy starts warm with the replicas the oracle has ready at t = 0 (those the windows within
one cold start of the beginning need: ceil(rate / replica capacity), or the oracle's final schedule
after its replay rounds when the oracle runs too); static starts (and stays) at the peak need (the
oracle's, after its replay rounds, when the oracle runs too). The replica capacity comes from
the oracle's load test and sets the KEDA threshold and the KPA concurrency target (see
``baselines``); "inferencefleet-loadtest" is the planner given the same load test as the pool's
spec.capacity.loadTest. Order: the oracle first, then the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from ..api.v1alpha1 import CapacitySpec, FleetQuota, InferencePool
from ..planner.tuning import DEFAULT_TUNING, PlannerTuning
from ..planner.types import PoolKey, pool_key
from .baselines import HpaPolicy, KedaPolicy, KpaPolicy, StaticPolicy
from .engine import EngineOptions
from .fleet import Policy, SimResult, simulate
from .oracle import OracleOutcome, ReplicaCapacity, needed, oracle, plan, replica_capacity
from .planner_policy import InferenceFleetPolicy
from .timeline import Timeline
from .traces import Trace

POLICIES = ("inferencefleet", "inferencefleet-loadtest", "hpa", "keda", "kpa", "static", "oracle")
"""Every policy name, in the order reports list them."""

Progress = Callable[[str, float, float], None]
"""(policy, simulated seconds done, total)."""


def capacities(pools: Sequence[InferencePool], traces: Mapping[PoolKey, Trace],
               engine: EngineOptions | None = None) -> dict[PoolKey, ReplicaCapacity]:
    """Load-tested SLO capacity of one replica of every pool, lengths from the pool's trace."""
    return {pool_key(p): replica_capacity(p, traces[pool_key(p)], engine=engine) for p in pools}


def with_load_test(pool: InferencePool, capacity: ReplicaCapacity) -> InferencePool:
    """``pool`` declaring ``capacity`` as its spec.capacity.loadTest (the load test KEDA's threshold comes from)."""
    spec = pool.spec
    declared = (spec.capacity or CapacitySpec()).model_copy(update={"loadTest": capacity.load_test()})
    return pool.model_copy(update={"spec": spec.model_copy(update={"capacity": declared})})


def oracle_start(outcome: OracleOutcome) -> dict[PoolKey, int]:
    """The replicas every policy starts with beside the oracle: those the oracle's schedule has ready at t = 0."""
    return {k: max(1, s.initial()) for k, s in outcome.schedules.items()}


def run_policies(
    pools: Sequence[InferencePool],
    traces: Mapping[PoolKey, Trace],
    policies: Sequence[str] = POLICIES,
    *,
    quota: FleetQuota | None = None,
    tick: float = 5.0,
    hpa_waiting_target: float = 1.0,
    progress: Progress | None = None,
    capacity: Mapping[PoolKey, ReplicaCapacity] | None = None,
    timeline: Timeline | None = None,
    engine: EngineOptions | None = None,
    from_minimum: bool = False,
    tuning: PlannerTuning = DEFAULT_TUNING,
) -> list[SimResult]:
    """Simulate each named policy (names from POLICIES); results in POLICIES order.

    ``timeline``, if given, records the inferencefleet policy's decisions.
    ``engine``: the simulator's own engines (``sim.engine``), load-tested the same way.
    ``from_minimum``: every autoscaler starts from replicas.min with no history, as a new deployment
    does (static keeps its peak; the oracle its schedule).
    ``tuning``: the planner's constants for the inferencefleet policy.
    """
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        raise ValueError(f"unknown policies {unknown}; allowed: {', '.join(POLICIES)}")
    capacity = dict(capacity) if capacity is not None else capacities(pools, traces, engine)
    horizon = max(t.duration for t in traces.values())
    by_key = {pool_key(p): p for p in pools}
    need = {k: needed(t, capacity[k].rate, horizon) for k, t in traces.items()}
    warm = {k: max(1, plan(n, by_key[k].spec.autoscaling.coldStart, by_key[k].spec.replicas.min).initial())
            for k, n in need.items()}
    peak = {k: max(n) for k, n in need.items()}

    def report(name: str) -> Callable[[float, float], None] | None:
        return None if progress is None else (lambda done, total: progress(name, done, total))

    results: dict[str, SimResult] = {}
    if "oracle" in policies:
        outcome = oracle(pools, traces, capacity, quota=quota, progress=report("oracle"), engine=engine)
        results["oracle"] = replace(outcome.result, replays=outcome.rounds)
        peak = outcome.peak
        warm = oracle_start(outcome)
    factories: dict[str, Callable[[], Policy]] = {
        "inferencefleet": lambda: InferenceFleetPolicy(tick, timeline.on_tick if timeline is not None else None, tuning),
        "inferencefleet-loadtest": lambda: InferenceFleetPolicy(tick, tuning=tuning, name="inferencefleet-loadtest"),
        "hpa": lambda: HpaPolicy(hpa_waiting_target),
        "keda": lambda: KedaPolicy({k: c.utilization * c.rate for k, c in capacity.items()}),
        "kpa": lambda: KpaPolicy({k: c.concurrency for k, c in capacity.items()}),
        "static": lambda: StaticPolicy(peak),
    }
    if from_minimum:
        warm = {k: p.spec.replicas.min for k, p in by_key.items()}
    load_tested = [with_load_test(p, capacity[pool_key(p)]) for p in pools]
    for name in POLICIES:
        if name in policies and name != "oracle":
            results[name] = simulate(load_tested if name == "inferencefleet-loadtest" else pools, traces,
                                     factories[name](), quota=quota, horizon=horizon,
                                     initial_replicas=peak if name == "static" else warm,
                                     progress=report(name), engine=engine)
    return [results[name] for name in POLICIES if name in results]
