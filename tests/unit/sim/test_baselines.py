"""Baselines follow their documented timing: HPA stabilization and rate limits, KEDA polling, KPA panic."""

from __future__ import annotations

from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.planner.types import PoolObservation, pool_key
from inferencefleet.signals.model import PoolSignals, Sample, SignalsSnapshot
from inferencefleet.sim.baselines import HpaPolicy, KedaPolicy, KpaPolicy
from inferencefleet.sim.fleet import PoolView

POOL = InferencePool.model_validate({
    "metadata": {"name": "p", "namespace": "ns"},
    "spec": {"model": {"name": "m-8b"}, "tier": "free", "replicas": {"min": 1, "max": 50}},
})
KEY = pool_key(POOL)


def signals(now: float, waiting: float = 0.0, rate: float = 0.0) -> SignalsSnapshot:
    pool = PoolSignals(namespace=KEY[0], pool=KEY[1], at=now, waiting=Sample.of(waiting, now),
                       request_rate=Sample.of(rate, now))
    return SignalsSnapshot(at=now, pools=[pool])


def view(replicas: int, concurrency: float = 0.0) -> dict:
    return {KEY: PoolView(POOL, PoolObservation(replicas, replicas), concurrency)}


def test_hpa_scale_up_is_limited_to_four_pods_or_double_per_minute() -> None:
    hpa = HpaPolicy(waiting_target=1.0)
    hpa.start([POOL], None)
    assert hpa.decide(0.0, signals(0.0, waiting=1000), view(2))[KEY].replicas == 6  # max(2 + 4, 2 x 2)
    assert hpa.decide(15.0, signals(15.0, waiting=1000), view(6))[KEY].replicas == 6  # same 60 s period
    assert hpa.decide(60.0, signals(60.0, waiting=1000), view(6))[KEY].replicas == 12  # next period: +100%


def test_hpa_does_not_scale_down_within_300s_of_a_peak() -> None:
    hpa = HpaPolicy(waiting_target=1.0)
    hpa.start([POOL], None)
    replicas = hpa.decide(0.0, signals(0.0, waiting=20), view(4))[KEY].replicas
    assert replicas == 8  # 4 x (20 / 4 per pod) = 20, limited to +4 / +100%
    history = []
    for step in range(1, 30):
        now = step * 15.0
        replicas = hpa.decide(now, signals(now, waiting=0), view(replicas))[KEY].replicas
        history.append((now, replicas))
    assert all(r == 8 for t, r in history if t < 300)
    assert all(r == 1 for t, r in history if t > 300)


def test_a_new_hpa_keeps_the_replicas_it_finds_for_the_stabilization_window() -> None:
    """Kubernetes records the current count as a new HPA's first recommendation (recordInitialRecommendation)."""
    hpa = HpaPolicy(waiting_target=1.0)
    hpa.start([POOL], None)
    counts = [hpa.decide(t, signals(t, waiting=0), view(12))[KEY].replicas for t in (0.0, 15.0, 285.0)]
    assert counts == [12, 12, 12]
    assert hpa.decide(315.0, signals(315.0, waiting=0), view(12))[KEY].replicas == 1


def test_hpa_tolerance_keeps_replicas_within_ten_percent() -> None:
    hpa = HpaPolicy(waiting_target=2.0)
    hpa.start([POOL], None)
    assert hpa.decide(0.0, signals(0.0, waiting=21), view(10))[KEY].replicas == 10  # ratio 1.05
    assert hpa.decide(15.0, signals(15.0, waiting=24), view(10))[KEY].replicas == 12  # ratio 1.2


def test_keda_sees_the_request_rate_only_every_30s() -> None:
    keda = KedaPolicy({KEY: 10.0})
    keda.start([POOL], None)
    assert keda.decide(0.0, signals(0.0, rate=40.0), view(4))[KEY].replicas == 4
    assert keda.decide(15.0, signals(15.0, rate=200.0), view(4))[KEY].replicas == 4  # not polled yet
    assert keda.decide(30.0, signals(30.0, rate=200.0), view(4))[KEY].replicas == 8  # polled; +4 limit


def test_kpa_panics_on_a_burst_and_does_not_scale_down_while_panicking() -> None:
    kpa = KpaPolicy({KEY: 10.0})
    kpa.start([POOL], None)
    replicas, history = 4, {}
    for second in range(0, 240):
        now = float(second)
        concurrency = 10.0 if second < 100 else (400.0 if second < 106 else 20.0)
        out = kpa.decide(now, signals(now), view(replicas, concurrency))
        replicas = out[KEY].replicas if KEY in out else replicas
        history[second] = replicas
    assert all(history[t] == 4 for t in range(60))  # no decision before a full 60 s stable window
    assert history[61] == 2 and history[99] == 1  # stable: 10 in flight / 10 per replica, at most halving per tick
    assert history[102] >= 8  # panic within seconds of the burst (the 6 s window)
    peak = max(history.values())
    assert all(history[t] == peak for t in range(106, 160))  # never down while panicking
    assert history[239] < peak  # 60 s after the last panic the stable window rules again
