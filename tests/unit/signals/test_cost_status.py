"""Cost from ready GPUs and prices; status.signals."""

from __future__ import annotations

import pytest

from inferencefleet.api.v1alpha1 import FleetQuota, InferencePool
from inferencefleet.signals.cost import pool_cost
from inferencefleet.signals.model import SIGNAL_NAMES, PoolSignals, Sample
from inferencefleet.signals.status import signals_status

AT = 1_746_100_800.0  # 2025-05-01T12:00:00Z


def quota() -> FleetQuota:
    return FleetQuota.model_validate({
        "metadata": {"name": "default"},
        "spec": {"gpuPrices": [{"type": "H100-80GB", "dollarsPerHour": 3.0}, {"type": "A100-80GB", "dollarsPerHour": 1.8}],
                 "tiers": [{"name": "premium", "priority": 100}]},
    })


def pool(gpu: str = "H100-80GB", tp: int = 4) -> InferencePool:
    return InferencePool.model_validate({
        "metadata": {"name": "llama-70b", "namespace": "serving"},
        "spec": {"model": {"name": "meta-llama/Llama-3.1-70B-Instruct"}, "tier": "premium",
                 "topology": {"gpu": {"type": gpu}, "tensorParallel": tp}},
    })


def signals(**values: float | str) -> PoolSignals:
    """Every signal missing ("no series") except ``values``; a string value is a missing reason."""
    samples = {n: Sample.absent("no series for this pool") for n in SIGNAL_NAMES}
    for name, value in values.items():
        samples[name] = Sample.absent(value) if isinstance(value, str) else Sample.of(value, AT)
    return PoolSignals(namespace="serving", pool="llama-70b", at=AT, **samples)


def test_cost_per_hour_and_per_million_tokens() -> None:
    cost = pool_cost(pool(), quota(), signals(ready_replicas=3, output_tokens_per_second=2000))
    assert cost.gpus == 12                                    # 3 replicas x TP4
    assert cost.dollars_per_hour == pytest.approx(36.0)       # 12 GPUs x $3
    assert cost.dollars_per_million_tokens == pytest.approx(36.0 / (2000 * 3600) * 1e6)  # $5.00
    assert cost.reasons == ()
    assert cost.status().to_wire() == {"gpus": 12, "dollarsPerHour": 36.0, "dollarsPerMillionTokens": pytest.approx(5.0)}


def test_missing_price_is_explained_not_guessed() -> None:
    cost = pool_cost(pool(gpu="L40S"), quota(), signals(ready_replicas=2, output_tokens_per_second=100))
    assert cost.gpus == 8 and cost.dollars_per_hour is None and cost.dollars_per_million_tokens is None
    assert cost.reasons == ("'L40S' has no price in FleetQuota 'default' gpuPrices; "
                            "priced types: H100-80GB, A100-80GB",)


def test_missing_or_zero_signals_leave_cost_unset_with_reasons() -> None:
    missing = pool_cost(pool(), quota(), signals(output_tokens_per_second="query failed: timeout"))
    assert (missing.gpus, missing.dollars_per_hour, missing.dollars_per_million_tokens) == (None, None, None)
    assert missing.reasons == ("ready_replicas missing: no series for this pool",
                               "output_tokens_per_second missing: query failed: timeout")
    idle = pool_cost(pool(), quota(), signals(ready_replicas=1, output_tokens_per_second=0))
    assert idle.dollars_per_hour == 12.0 and idle.dollars_per_million_tokens is None
    assert idle.reasons == ("no output tokens in the window: cost per token is undefined",)


def test_signals_status_fields() -> None:
    status = signals_status(signals(request_rate=4.53, output_tokens_per_second=917, waiting=0, running=17,
                                    kv_cache_usage=0.424, ttft_p99=0.81234, itl_p99=0.0413))
    assert status.to_wire() == {  # two significant digits: jitter below them costs no status write
        "requestRate": 4.5, "outputTokensPerSecond": 920, "waiting": 0, "running": 17, "kvCacheUsage": 0.42,
        "ttftP99": "810ms", "itlP99": "41ms", "at": "2025-05-01T12:00:00Z",
    }
    jittered = signals_status(signals(request_rate=4.47, output_tokens_per_second=921, waiting=0, running=17,
                                      kv_cache_usage=0.418, ttft_p99=0.8088, itl_p99=0.0409))
    assert jittered == status
    assert signals_status(signals()).to_wire() == {"at": "2025-05-01T12:00:00Z"}
