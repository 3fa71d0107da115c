"""``inferencefleet backtest`` against a real Prometheus loaded with the history of a known fleet.

History (scraped every 10 s, queried over the last hour H at a 30 s step, rates over 1 m):
- serving/llama3-8b-free (vLLM, 1 GPU per replica): pods 0 and 1 all hour, pod 2 from H+30m;
  each completes 3 requests/s of 500 prompt and 100 output tokens, TTFT and ITL within the SLO.
  Pod 1 restarts at H+20m (its counters start again from zero: a counter reset). Nothing of this
  pool is scraped from H+40m to H+50m (a gap).
- serving/llama3-70b-premium (4 GPUs per replica): one pod from H+15m to H+35m only (a pool that
  appears and disappears), 2 requests/s of 1000 and 200 tokens, p99 TTFT 2.5 s (SLO 1 s: missed).
- serving/unknown: history but no InferencePool given: skipped.
Prometheus's instant vectors see a series up to 5 minutes after its last sample (lookback), and
backfilled blocks have no staleness markers: the expected replicas follow that rule.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferencefleet.cli import main
from inferencefleet.signals.history_reader import read_history
from inferencefleet.signals.testing import Point, backfill, prometheus
from inferencefleet.sim.backtest import arrivals, backtest

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "policies" / "examples"
SCRAPE = 10
HOUR = 3600
LOOKBACK = 300
TTFT_EDGES = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ITL_EDGES = (0.025, 0.05, 0.075, 0.1, 0.15)
SMALL = "serving", "llama3-8b-free"
LARGE = "serving", "llama3-70b-premium"


def labels(pool: str, pod: str) -> dict[str, str]:
    return {"namespace": "serving", "inferencefleet_io_pool": pool, "pod": pod}


def pod_points(pool: str, pod: str, times: list[int], rate: float, prompt: int, output: int,
               ttft_bucket: float, reset_at: int | None = None) -> list[Point]:
    """Counters growing by ``rate`` x SCRAPE per sample (restarting from zero after ``reset_at``), histograms, up."""
    lbl = labels(pool, pod)
    per_sample = rate * SCRAPE
    points: list[Point] = []
    for i, t in enumerate(times):
        done = per_sample * (i + 1) if reset_at is None or t < reset_at else \
            per_sample * sum(1 for s in times[:i + 1] if s >= reset_at)
        points += [("vllm:request_success_total", {**lbl, "finished_reason": "stop"}, t, done),
                   ("vllm:prompt_tokens_total", lbl, t, done * prompt),
                   ("vllm:generation_tokens_total", lbl, t, done * output),
                   ("up", lbl, t, 1.0)]
        for name, edges, bucket in (("vllm:time_to_first_token_seconds", TTFT_EDGES, ttft_bucket),
                                    ("vllm:inter_token_latency_seconds", ITL_EDGES, 0.05)):
            for edge in (*edges, float("inf")):
                le = "+Inf" if edge == float("inf") else repr(edge)
                points.append((f"{name}_bucket", {**lbl, "le": le}, t, done * output if edge >= bucket else 0.0))
    return points


def fleet(start: int, end: int) -> tuple[list[Point], dict[tuple[str, str], list[list[int]]]]:
    """The history, and each pool's pods' sample times (for the expected replicas)."""
    data_start = start - 600
    every = list(range(data_start, end + 1, SCRAPE))
    gap = (start + 40 * 60, start + 50 * 60)
    small = [t for t in every if not gap[0] < t < gap[1]]
    pods = {
        SMALL: [small, small, [t for t in small if t >= start + 30 * 60]],
        LARGE: [[t for t in every if start + 15 * 60 <= t <= start + 35 * 60]],
    }
    points: list[Point] = []
    for i, times in enumerate(pods[SMALL]):
        points += pod_points(SMALL[1], f"small-{i}", times, 3.0, 500, 100, 0.25,
                             reset_at=start + 20 * 60 if i == 1 else None)
    points += pod_points(LARGE[1], "large-0", pods[LARGE][0], 2.0, 1000, 200, 2.5)
    points += pod_points("unknown", "unknown-0", every, 1.0, 100, 10, 0.25)
    return points, pods


def expected_replicas(pod_times: list[list[int]], at: float) -> int:
    """Pods Prometheus shows as up at ``at``: a sample within the lookback before it (2.x: both ends included)."""
    return sum(any(at - LOOKBACK <= t <= at for t in times) for times in pod_times)


@pytest.fixture(scope="module")
def history_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, int, dict]]:
    end = int(time.time()) // 60 * 60 - 120
    start = end - HOUR
    points, pods = fleet(start, end)
    data = tmp_path_factory.mktemp("backtest") / "data"
    backfill(points, data)
    with prometheus(data) as url:
        yield url, start, end, pods


def test_arrivals_are_rebuilt_through_resets_and_gaps(history_server: tuple[str, int, int, dict]) -> None:
    url, start, end, _ = history_server
    histories = read_history(url, start, end, 30.0)
    assert set(histories) == {SMALL, LARGE, ("serving", "unknown")}
    small = arrivals(histories[SMALL])
    # 2 pods x 3/s for 30 min, 3 pods x 3/s for 30 min, less the 10-minute gap (3 pods): the reset loses nothing.
    assert len(small.requests) == pytest.approx(6 * 1800 + 9 * 1800 - 9 * 600, rel=0.03)
    assert {(r.prompt_tokens, r.output_tokens) for r in small.requests} == {(500, 100)}
    minute = [0] * 60
    for request in small.requests:
        minute[min(59, int(request.arrival // 60))] += 1
    assert minute[25] == pytest.approx(6 * 60, rel=0.02)  # across the reset at 20 min: no dip, no spike
    assert minute[35] == pytest.approx(9 * 60, rel=0.02)
    assert sum(minute[41:50]) == 0  # the gap: no history, no arrivals (not a guess)
    large = arrivals(histories[LARGE])
    assert len(large.requests) == pytest.approx(2 * 20 * 60, rel=0.05)
    assert min(r.arrival for r in large.requests) >= 15 * 60 - 60
    assert max(r.arrival for r in large.requests) <= 35 * 60 + 60


def test_what_ran_counts_ready_replicas_x_gpus(history_server: tuple[str, int, int, dict]) -> None:
    url, start, end, pods = history_server
    from inferencefleet.manifests import load_pools

    histories = read_history(url, start, end, 30.0)
    pools = load_pools([str(EXAMPLES / "llama3-8b-free.yaml"), str(EXAMPLES / "llama3-70b-premium.yaml")])
    outcome = backtest(pools, histories, None)
    steps = [start + k * 30 for k in range(HOUR // 30 + 1)]
    for pool in outcome.what_ran.pools:
        gpus = 4 if pool.key == LARGE else 1
        expected = sum(expected_replicas(pods[pool.key], t) for t in steps) * gpus * 30 / 3600
        assert pool.gpu_hours == pytest.approx(expected, rel=1e-6), pool.key
    ran = {p.key: p for p in outcome.what_ran.pools}
    assert ran[LARGE].attainment == 0.0 and ran[SMALL].attainment == 1.0  # p99 TTFT 2.5 s vs 1 s; 0.25 s vs 2 s
    shadow = {p.key: p for p in outcome.shadow.pools}
    assert shadow[SMALL].requests == len(outcome.arrivals[SMALL].requests)
    assert shadow[LARGE].requests == len(outcome.arrivals[LARGE].requests)
    large_rows = [float(row["t"]) for row in outcome.shadow.series if row["pool"] == "/".join(LARGE)]
    lifetime = (14 * 60, 35 * 60 + LOOKBACK)  # Prometheus shows its last sample for the lookback
    assert lifetime[0] <= min(large_rows) and max(large_rows) <= lifetime[1]  # replayed over its own lifetime
    hours = (lifetime[1] - lifetime[0]) / 3600
    assert 0 < shadow[LARGE].gpu_hours <= shadow[LARGE].peak_replicas * 4 * hours  # never charged outside it


def test_the_command_prints_savings_per_pool_and_tier_and_writes_the_report(
        history_server: tuple[str, int, int, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, _, end, _ = history_server
    code = main(["backtest", "--prometheus", url, "--since", "1h", "--until", str(end), "--step", "30s",
                 "-f", str(EXAMPLES / "llama3-8b-free.yaml"), str(EXAMPLES / "llama3-70b-premium.yaml"),
                 "--quota", str(EXAMPLES / "quota.yaml"), "--out", str(tmp_path)])
    assert code == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "serving/unknown: history but no InferencePool in -f: skipped" in printed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [p["policy"] for p in summary["policies"]] == ["what ran", "inferencefleet"]
    assert "than what ran" in summary["verdict"] and summary["verdict"] in printed
    savings = {(s["pool"], s["tier"]): s for s in summary["savings"]}
    assert set(savings) == {("serving/llama3-8b-free", "free"), ("serving/llama3-70b-premium", "premium"),
                            ("*", "premium"), ("*", "free")}
    for (pool, _), entry in savings.items():
        assert re.search(rf"{re.escape(pool if pool != '*' else '(all)')} \w+ {entry['gpu_hours_ran']:.2f} ", printed)
    assert savings[("serving/llama3-70b-premium", "premium")]["minutes_missing_slo_ran"]
    html = (tmp_path / "report.html").read_text()
    assert "Saved (+) or added (-) per pool and tier" in html and "pool-llama3-70b-premium.png" in html
