"""The backtest's pure parts: arrivals rebuilt from a history, what ran, prices, and the demo's traffic."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.cli import main
from inferencefleet.manifests import load_pools, load_quota
from inferencefleet.render.cost import DEFAULT_GPU_PRICES, report_price
from inferencefleet.signals.history import HISTORY_SIGNALS, PoolHistory
from inferencefleet.sim.backtest import arrivals, lifetime, what_ran
from inferencefleet.sim.demo import day_share
from inferencefleet.sim.replica import Request
from inferencefleet.sim.traces import Trace, shape_rate, tile

REPO = Path(__file__).resolve().parents[3]
POOL = REPO / "policies" / "examples" / "llama3-8b-free.yaml"
QUOTA = REPO / "policies" / "examples" / "quota.yaml"


def history(**series: list[float | None]) -> PoolHistory:
    steps = len(next(iter(series.values())))
    values = {name: series.get(name, [None] * steps) for name in HISTORY_SIGNALS}
    return PoolHistory(("serving", "llama3-8b-free"), 0.0, 30.0, values)


def test_arrivals_keep_the_total_through_fractions_and_skip_gaps() -> None:
    rates: list[float | None] = [1.0, 0.5, 0.1, None, None, 0.1, 2.0]
    h = history(request_rate=rates, prompt_tokens_per_second=[r and r * 400 for r in rates],
                output_tokens_per_second=[r and r * 50 for r in rates])
    trace = arrivals(h)
    per_step = [sum(1 for r in trace.requests if k * 30 < r.arrival + 30 <= (k + 1) * 30) for k in range(len(rates))]
    # step 0 completed before the range; 0.1 x 30 = 3 per step; no value (a gap) is no arrival, not zero rate
    assert per_step == [0, 15, 3, 0, 0, 3, 60]
    assert {(r.prompt_tokens, r.output_tokens) for r in trace.requests} == {(400, 50)}
    assert len({r.arrival for r in trace.requests}) == len(trace.requests)  # never two at one instant
    assert [r.arrival for r in trace.requests] == sorted(r.arrival for r in trace.requests)


def test_lifetime_and_what_ran_count_only_steps_with_history() -> None:
    (pool,) = load_pools([str(POOL)])
    h = history(request_rate=[None, 1.0, 1.0, 1.0, None], ready_replicas=[None, 2.0, 2.0, 3.0, None],
                ttft_p99=[None, 0.5, 5.0, 0.5, None], itl_p99=[None, 0.05, 0.05, 0.05, None],
                prompt_tokens_per_second=[None, 100.0, 100.0, 100.0, None],
                output_tokens_per_second=[None, 10.0, 10.0, 10.0, None])
    assert lifetime(h) == (1, 3)
    result = what_ran(pool, h, load_quota(str(QUOTA)))
    (ran,) = result.pools
    assert ran.gpu_hours == pytest.approx((2 + 2 + 3) * 30 / 3600)
    assert ran.requests == 90 and ran.good == 60  # the step with p99 TTFT 5 s (SLO 2 s) misses
    assert ran.missed_windows == [1]  # its requests arrived in the second minute


def test_report_prices_come_from_the_quota_then_the_default_table() -> None:
    (pool,) = load_pools([str(POOL)])
    quota = load_quota(str(QUOTA))
    assert report_price(pool, quota) == (3.0, "FleetQuota default")
    def on(gpu_type: str) -> InferencePool:
        text = POOL.read_text().replace("type: H100-80GB", f"type: {gpu_type}")
        return InferencePool.model_validate(next(d for d in yaml.safe_load_all(text)))

    assert report_price(on("L40S"), None) == (DEFAULT_GPU_PRICES["L40S"], "default price table")
    price, why = report_price(on("MI300X"), quota)
    assert price is None and "'MI300X' has no price" in why


def test_tile_and_shape_rate_give_the_demo_its_day() -> None:
    base = Trace("t", tuple(Request(i, float(i), 10, 10) for i in range(60)))  # 1 req/s for a minute
    day = tile(base, 600)
    assert len(day.requests) == 600  # ten copies, one per 60 s (the 59 s trace and a second between copies)
    assert max(r.arrival for r in day.requests) < 600
    shaped = shape_rate(day, lambda t: 0.0 if t < 300 else 3.0, seed=1)
    assert not any(r.arrival < 300 for r in shaped.requests)
    assert len(shaped.requests) == 3 * sum(1 for r in day.requests if r.arrival >= 300)
    assert day_share(14.5) == 1.0 and day_share(3.5) == 0.22 and day_share(24 + 14.5) == 1.0


def test_backtest_refuses_a_bad_until(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--prometheus", "http://127.0.0.1:9", "-f", str(POOL), "--until", "yesterday",
                 "--out", "/tmp/unused"])
    err = capsys.readouterr().err
    assert code == 2 and "--until: 'yesterday' is neither Unix seconds nor an ISO 8601 time" in err
