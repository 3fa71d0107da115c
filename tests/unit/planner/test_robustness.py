"""Fail static beyond 'absent': extreme values, clock steps and partial scrapes never crash the planner or
make it shed replicas it cannot justify."""

from __future__ import annotations

import math
from dataclasses import asdict

from hypothesis import given, settings
from hypothesis import strategies as st

from inferencefleet.planner.controller import tick
from inferencefleet.planner.memory import FleetState
from inferencefleet.planner.types import PoolObservation
from inferencefleet.signals.model import SIGNAL_NAMES, PoolSignals, Sample, SignalsSnapshot

from .conftest import World, pool

KEY = ("ns", "p")
finite = st.floats(min_value=0, max_value=1.7e308, allow_nan=False, allow_infinity=False)
extreme = st.one_of(finite, st.sampled_from([0.0, 1e-300, 1.0, 1e9, 1e154, 1e300, 1.7e308]))


def _snapshot(at: float, values: dict[str, float | None]) -> SignalsSnapshot:
    samples = {n: Sample.absent("not in this test") if v is None else Sample.of(v, at) for n, v in values.items()}
    return SignalsSnapshot(at=at, pools=[PoolSignals(namespace="ns", pool="p", at=at, **samples)])


def _numbers(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return [n for item in items for n in _numbers(item)]


def _finite_memory(state: FleetState) -> bool:
    return all(math.isfinite(v) for v in _numbers(asdict(state.memory(KEY))))


@settings(max_examples=100, deadline=None)
@given(ticks=st.lists(st.fixed_dictionaries({n: extreme for n in SIGNAL_NAMES}), min_size=1, max_size=4),
       replicas=st.integers(min_value=0, max_value=30))
def test_any_finite_signals_give_a_decision_within_the_bounds(ticks: list[dict[str, float]], replicas: int) -> None:
    spec = pool()
    state, now = FleetState(), 10_000.0
    for values in ticks:
        now += 15.0
        result = tick([spec], None, _snapshot(now, dict(values)), {KEY: PoolObservation(replicas, replicas, 256)},
                      state, now)
        state = result.state
        decision = result.decision(KEY)
        assert 0 <= decision.desired_replicas <= max(spec.spec.replicas.max, replicas)
        assert _finite_memory(state)
        assert all(len(r.reason) < 1000 for r in decision.records)


def test_demand_beyond_any_fleet_goes_to_replicas_max_and_says_so() -> None:
    world = World([pool()])
    for _ in range(3):
        result = world.step({"p": 1e308}, running=10.0, waiting=1.7e308)
    decision = result.decision(KEY)
    assert decision.desired_replicas == 20
    assert "beyond" in decision.records[0].reason and "replicas.max 20" in decision.records[0].reason
    metrics = decision.condition("MetricsAvailable")
    assert metrics is not None and (metrics.status, metrics.reason) == ("False", "SignalOutOfRange")
    assert "waiting" in metrics.message and "1.7e+308" in metrics.message


def _busy_world() -> World:
    """A pool at 11 replicas after a long steady load."""
    world = World([pool()])
    for _ in range(80):
        world.step({"p": 200.0})
    assert len(world.replicas[KEY]) == 11
    return world


def _ticks_until_below(world: World, count: int, rate: float) -> int:
    for ticks in range(1, 100):
        if world.step({"p": rate}).decision(KEY).desired_replicas < count:
            return ticks
    raise AssertionError("never scaled down")


def test_a_forward_clock_step_does_not_skip_the_scale_down_window() -> None:
    steady, stepped = _busy_world(), _busy_world()
    stepped.step({"p": 10.0}, dt=3600.0)  # the clock jumps an hour between two ticks
    assert len(stepped.replicas[KEY]) == 11, "an hour of clock is not an hour of low demand"
    assert _ticks_until_below(stepped, 11, 10.0) + 1 >= _ticks_until_below(steady, 11, 10.0)


def test_a_backward_clock_step_neither_crashes_nor_freezes_the_window() -> None:
    steady, stepped = _busy_world(), _busy_world()
    stepped.step({"p": 10.0}, dt=-3600.0)
    assert len(stepped.replicas[KEY]) == 11
    assert _ticks_until_below(stepped, 11, 10.0) <= _ticks_until_below(steady, 11, 10.0) + 2


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from([0.0, -600.0, 7200.0, 86400.0, -1e6, 1e7]), st.integers(3, 6)),
                      min_size=1, max_size=6))
def test_clock_steps_count_as_one_tick_in_the_scale_down_window(steps: list[tuple[float, int]]) -> None:
    world = _busy_world()
    ticks = 0
    for step, normal in steps:
        for dt in (step, *[15.0] * normal):
            count = len(world.replicas[KEY])
            desired = world.step({"p": 10.0}, dt=dt).decision(KEY).desired_replicas
            ticks += 1
            assert desired <= count
            if desired < 11:
                assert ticks * 15.0 >= 120.0, "down before one scale-down delay of ticks"
    assert _finite_memory(world.state)


def _scraped(world: World, scraped: int, rate: float = 10.0):
    """One tick where the engine gauges of only ``scraped`` pods were in the last scrape."""
    world.now += 15.0
    from .conftest import signals

    partial = signals("p", world.now, rate).model_copy(
        update={"scraped_replicas": Sample.of(float(scraped), world.now)})
    result = tick(world.pools, None, SignalsSnapshot(at=world.now, pools=[partial]),
                  {KEY: world.observation(KEY)}, world.state, world.now)
    world.state = result.state
    for decision in result.decisions:
        world._apply(decision)
    return result.decision(KEY)


def test_a_partial_scrape_holds_and_says_how_many_were_scraped() -> None:
    world = _busy_world()
    for _ in range(20):  # 3 of 11 pods scraped, showing a third of the demand: long past the scale-down delay
        decision = _scraped(world, 3, rate=200.0 * 3 / 11)
    assert decision.desired_replicas == 11
    metrics = decision.condition("MetricsAvailable")
    assert metrics is not None and (metrics.status, metrics.reason) == ("False", "PartialScrape")
    assert "3 of the 11 ready replicas were scraped" in metrics.message
    assert "never scaling down" in decision.records[0].reason
    full = _scraped(world, 11, rate=200.0)
    assert full.condition("MetricsAvailable").status == "True"  # type: ignore[union-attr]


def test_replicas_just_ready_are_not_expected_in_the_scrape_yet() -> None:
    world = World([pool()], ready_after=30.0)
    for _ in range(10):
        _scraped(world, 1, rate=5.0)
    decision = _scraped(world, 1, rate=100.0)  # scales up; the new replicas are ready 30 s later
    assert decision.desired_replicas > 1
    grown = decision.desired_replicas
    for _ in range(3):  # ready now, scraped at the next scrape: not a partial scrape within the grace
        decision = _scraped(world, 1, rate=100.0)
        assert decision.condition("MetricsAvailable").reason != "PartialScrape"  # type: ignore[union-attr]
    for _ in range(4):
        decision = _scraped(world, 1, rate=100.0)
    assert decision.condition("MetricsAvailable").reason == "PartialScrape"  # type: ignore[union-attr]
    assert decision.desired_replicas >= grown


def test_state_with_the_new_memory_round_trips() -> None:
    world = _busy_world()
    _scraped(world, 11)
    again = FleetState.from_json(world.state.to_json())
    assert again == world.state
