"""The autoscalers inferencefleet is compared with, each following its documented algorithm.

Sources: shared/reference/metrics-calibration-baselines.md section 4.2 (Kubernetes HPA, KEDA and
Knative KPA defaults). Targets (the one knob each baseline has) are chosen to be fair:

- HPA (autoscaling/v2, Prometheus adapter) on ``vllm:num_requests_waiting`` averaged per pod,
  target ``waiting_target`` = 1 by default: a replica that queues more than one request has a full
  batch (max-num-seqs or KV cache), which is the point where TTFT starts to grow; a higher target
  lets queues (and TTFT) grow further before scaling. Sync 15 s, tolerance 10%, scale-down
  stabilization 300 s (the highest recommendation of the last 300 s wins; a new HPA's first
  recommendation is the replica count it finds, as in Kubernetes), scale-up limited to the
  higher of +4 pods or +100% per 60 s, scale-down 100% per 15 s.
- KEDA Prometheus scaler: polls ``sum(rate(vllm:request_success_total[1m]))`` every 30 s and feeds
  it to the same HPA as an external AverageValue metric. Threshold per replica =
  ``utilization`` x the replica's SLO capacity (req/s, measured by load-testing one replica in
  this simulator: ``oracle.replica_capacity``), i.e. what an engineer sets after a load test.
- Knative KPA on concurrency (in-flight requests per ready replica), sampled every second; desired
  = ceil(average concurrency over the 60 s stable window / target); panic mode when the 6 s panic
  window asks for >= 2x the ready replicas: scale up on the panic window, never down while
  panicking (panic lasts until the stable window has not asked for 2x for 60 s). Scale-up rate
  <= 1000x, scale-down rate <= 2x per decision (every 2 s). Target concurrency per replica =
  ``utilization`` x the replica's SLO capacity x its mean latency (Little's law at that rate), as
  the Knative docs recommend: measure the concurrency one replica handles within the SLO. (Taking
  the concurrency at full capacity instead is unstable: in-flight requests per replica grow
  faster than load near the knee, so a lightly loaded fleet looks over-provisioned.) No decision
  before a full stable window of samples, as Knative reports no data until then.
- Static: ``replicas`` all the time (the peak provisioning reference), ready from the start.
All baselines keep replicas within spec.replicas.min..max, as HPA's min/maxReplicas do.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence

from ..api.v1alpha1 import FleetQuota, InferencePool
from ..planner.types import PoolKey, pool_key
from ..signals.model import SignalsSnapshot
from .fleet import Policy, PoolView, Target

HPA_SYNC = 15.0
HPA_TOLERANCE = 0.1
HPA_DOWN_STABILIZATION = 300.0
HPA_UP_PERIOD = 60.0
HPA_UP_PODS = 4
HPA_UP_PERCENT = 100.0
KEDA_POLLING = 30.0
KPA_TICK = 2.0
KPA_STABLE_WINDOW = 60.0
KPA_PANIC_WINDOW = 6.0
KPA_PANIC_THRESHOLD = 2.0
KPA_MAX_SCALE_UP_RATE = 1000.0
KPA_MAX_SCALE_DOWN_RATE = 2.0


def _clamp(pool: InferencePool, replicas: int) -> int:
    return max(pool.spec.replicas.min, min(pool.spec.replicas.max, replicas))


class _HpaController:
    """The HPA replica calculation with default behaviour, for one pool."""

    def __init__(self) -> None:
        self.recommendations: deque[tuple[float, int]] = deque()
        self.scale_ups: deque[tuple[float, int]] = deque()

    def desired(self, now: float, current: int, ratio: float | None, pool: InferencePool) -> int:
        """``ratio`` = metric / target (None: metric missing, keep)."""
        if ratio is None or abs(ratio - 1.0) <= HPA_TOLERANCE:
            raw = current
        else:
            raw = math.ceil(current * ratio) if current > 0 else math.ceil(ratio)
        raw = _clamp(pool, raw)
        if not self.recommendations:  # a new HPA: Kubernetes' recordInitialRecommendation of the count it finds
            self.recommendations.append((now, current))
        self.recommendations.append((now, raw))
        while self.recommendations and self.recommendations[0][0] < now - HPA_DOWN_STABILIZATION:
            self.recommendations.popleft()
        if raw < current:  # scale-down stabilization: the highest recommendation of the window
            raw = min(current, max(r for _, r in self.recommendations))
        if raw > current:
            while self.scale_ups and self.scale_ups[0][0] <= now - HPA_UP_PERIOD:
                self.scale_ups.popleft()
            period_start = current - sum(n for _, n in self.scale_ups)
            limit = max(period_start + HPA_UP_PODS, math.ceil(period_start * (1 + HPA_UP_PERCENT / 100)))
            raw = min(raw, limit)
            if raw > current:
                self.scale_ups.append((now, raw - current))
        return _clamp(pool, raw)


class HpaPolicy(Policy):
    """Kubernetes HPA on average ``vllm:num_requests_waiting`` per pod."""

    name = "hpa"
    interval = HPA_SYNC

    def __init__(self, waiting_target: float = 1.0) -> None:
        if waiting_target <= 0:
            raise ValueError(f"waiting_target must be > 0 (got {waiting_target})")
        self.waiting_target = waiting_target
        self._controllers: dict[PoolKey, _HpaController] = {}

    def start(self, pools: Sequence[InferencePool], quota: FleetQuota | None) -> None:
        self._controllers = {pool_key(p): _HpaController() for p in pools}

    def decide(self, now: float, signals: SignalsSnapshot, pools: Mapping[PoolKey, PoolView]) -> dict[PoolKey, Target]:
        out = {}
        for key, view in pools.items():
            sig = signals.for_pool(*key)
            waiting, ready = sig.waiting.value, view.observation.ready_replicas
            ratio = None if waiting is None or ready == 0 else (waiting / ready) / self.waiting_target
            current = view.observation.replicas
            out[key] = Target(self._controllers[key].desired(now, current, ratio, view.pool))
        return out


class KedaPolicy(Policy):
    """KEDA's Prometheus scaler on the pool's request rate, polled every 30 s, feeding HPA."""

    name = "keda"
    interval = HPA_SYNC

    def __init__(self, threshold: Mapping[PoolKey, float]) -> None:
        if any(t <= 0 for t in threshold.values()):
            raise ValueError("every KEDA threshold must be > 0 requests/s per replica")
        self.threshold = dict(threshold)
        self._controllers: dict[PoolKey, _HpaController] = {}
        self._polled: dict[PoolKey, float | None] = {}
        self._last_poll = -math.inf

    def start(self, pools: Sequence[InferencePool], quota: FleetQuota | None) -> None:
        self._controllers = {pool_key(p): _HpaController() for p in pools}
        self._polled = {}
        self._last_poll = -math.inf

    def decide(self, now: float, signals: SignalsSnapshot, pools: Mapping[PoolKey, PoolView]) -> dict[PoolKey, Target]:
        if now - self._last_poll >= KEDA_POLLING:
            self._polled = {key: signals.for_pool(*key).request_rate.value for key in pools}
            self._last_poll = now
        out = {}
        for key, view in pools.items():
            rate, current = self._polled.get(key), view.observation.replicas
            # External metric, AverageValue target: desired = ceil(total / threshold) = ceil(current * ratio)
            ratio = None if rate is None or current == 0 else rate / (self.threshold[key] * current)
            out[key] = Target(self._controllers[key].desired(now, current, ratio, view.pool))
        return out


class KpaPolicy(Policy):
    """Knative's KPA on in-flight requests per replica, stable and panic windows."""

    name = "kpa"
    interval = 1.0

    def __init__(self, target: Mapping[PoolKey, float]) -> None:
        if any(t <= 0 for t in target.values()):
            raise ValueError("every KPA concurrency target must be > 0")
        self.target = dict(target)
        self._samples: dict[PoolKey, deque[tuple[float, float]]] = {}
        self._panic_until: dict[PoolKey, float] = {}
        self._last: dict[PoolKey, int] = {}

    def start(self, pools: Sequence[InferencePool], quota: FleetQuota | None) -> None:
        self._samples = {pool_key(p): deque() for p in pools}
        self._panic_until = dict.fromkeys(self._samples, -math.inf)
        self._last = {}

    def decide(self, now: float, signals: SignalsSnapshot, pools: Mapping[PoolKey, PoolView]) -> dict[PoolKey, Target]:
        out = {}
        for key, view in pools.items():
            samples = self._samples[key]
            samples.append((now, view.concurrency))
            while samples[0][0] <= now - KPA_STABLE_WINDOW:
                samples.popleft()
            if now % KPA_TICK or now < KPA_STABLE_WINDOW:  # no decision before a full stable window of data
                continue
            out[key] = Target(self._decide(key, now, samples, view))
        return out

    def _decide(self, key: PoolKey, now: float, samples: deque[tuple[float, float]], view: PoolView) -> int:
        ready = max(view.observation.ready_replicas, 1)
        target = self.target[key]
        stable = sum(c for _, c in samples) / len(samples)
        recent = [c for t, c in samples if t > now - KPA_PANIC_WINDOW]
        panic = sum(recent) / len(recent)
        stable_want, panic_want = math.ceil(stable / target), math.ceil(panic / target)
        if panic_want / ready >= KPA_PANIC_THRESHOLD:
            self._panic_until[key] = now + KPA_STABLE_WINDOW
        current = view.observation.replicas
        if now < self._panic_until[key]:
            want = max(panic_want, current, self._last.get(key, 0))  # never scale down while panicking
        else:
            want = stable_want
        want = min(want, math.ceil(ready * KPA_MAX_SCALE_UP_RATE))
        want = max(want, math.floor(ready / KPA_MAX_SCALE_DOWN_RATE))
        want = _clamp(view.pool, want)
        self._last[key] = want
        return want


class StaticPolicy(Policy):
    """Fixed replicas per pool (start the run with them ready: ``initial_replicas``)."""

    name = "static"
    interval = 3600.0

    def __init__(self, replicas: Mapping[PoolKey, int]) -> None:
        self.replicas = dict(replicas)

    def decide(self, now: float, signals: SignalsSnapshot, pools: Mapping[PoolKey, PoolView]) -> dict[PoolKey, Target]:
        return {key: Target(self.replicas[key]) for key in pools if key in self.replicas}
