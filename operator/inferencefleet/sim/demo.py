"""The demo: a fleet of three tiers under the example FleetQuota over one day, every policy, a report.

``run_demo(out_dir)`` is what ``make demo`` runs: no cluster, no network. The fleet is the bundled
examples: Llama 3 70B (premium, TP4), Mixtral 8x7B (standard, TP2 + expert parallel) and Llama 3
8B (free, one GPU), all drawing on ``quota.yaml`` (64 GPUs, $180/h; premium guaranteed 24 GPUs,
standard 8, free none).

Each pool's traffic is the bundled 14 minutes of the Azure 2023 conversation trace (CC-BY 4.0),
repeated over the day, with its rate multiplied by a day curve: ``HOURLY_SHARE`` of the pool's
peak rate, interpolated between hours. The curve is illustrative (a business-hours service:
lowest before dawn, highest mid-afternoon), not measured: the Azure traces cover one hour each.
The trace gives the second-to-second burstiness and the request lengths. The free tier's
consumers peak two hours later than the others, so in the afternoon all three tiers want more
than the fleet's $180/h and the quota decides who gets what. A day lasts DAY_MINUTES simulated
minutes (two minutes per hour), the cold starts keep their real length.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import queue
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..api.v1alpha1 import FleetQuota, InferencePool
from ..manifests import load_pools, load_quota
from ..planner.types import PoolKey, pool_key
from .compare import Progress, run_policies
from .fleet import SimResult
from .report import Context, summarize, write_report
from .timeline import Timeline
from .traces import Trace, bundled_trace_path, load_trace, shape_rate, tile

DEMO_QUOTA = "quota.yaml"
DEMO_POLICIES = ("inferencefleet", "hpa", "keda", "static")
"""Knative KPA and the oracle (which replays the day up to 16 times) are left out for time;
``inferencefleet simulate --policy all`` runs them."""
DAY_MINUTES = 48.0
"""Simulated minutes per day of the curve."""
HOURLY_SHARE = (0.35, 0.28, 0.24, 0.22, 0.22, 0.25, 0.33, 0.45, 0.60, 0.74, 0.84, 0.90,
                0.93, 0.96, 1.00, 0.98, 0.94, 0.88, 0.80, 0.72, 0.64, 0.56, 0.48, 0.41)
"""Share of the peak request rate in each hour of the day (0 = midnight to 1 am)."""


@dataclass(frozen=True)
class DemoPool:
    """One pool of the demo fleet and its traffic."""

    file: str
    peak_scale: float
    """Peak request rate, in multiples of the bundled trace's mean rate (about 4.9 req/s)."""
    shift_hours: float = 0.0
    """Hours by which this pool's day runs later than the curve."""
    seed: int = 0


DEMO_POOLS = (
    DemoPool("llama3-70b-premium.yaml", 7.0, seed=1),
    DemoPool("mixtral-trtllm-standard.yaml", 11.0, seed=2),
    DemoPool("llama3-8b-free.yaml", 20.0, shift_hours=2.0, seed=3),
)


def day_share(hour: float) -> float:
    """HOURLY_SHARE at ``hour`` (any real number, wrapping at 24), linear between the middles of hours."""
    position = (hour - 0.5) % 24
    low = math.floor(position)
    frac = position - low
    return HOURLY_SHARE[low] * (1 - frac) + HOURLY_SHARE[(low + 1) % 24] * frac


def demo_traces(pools: list[tuple[InferencePool, DemoPool]], base: Trace,
                day_minutes: float = DAY_MINUTES) -> dict[PoolKey, Trace]:
    """Each pool's day: ``base`` repeated over ``day_minutes`` and scaled to the pool's day curve."""
    seconds = day_minutes * 60
    mean_rate = len(base.requests) / base.duration
    repeated = tile(base, seconds)
    traces = {}
    for pool, demo in pools:
        def factor(t: float, demo: DemoPool = demo) -> float:
            return demo.peak_scale * day_share(t / seconds * 24 - demo.shift_hours)
        day = shape_rate(repeated, factor, seed=demo.seed)
        traces[pool_key(pool)] = Trace(f"{base.name}, one day in {day_minutes:g} min, peak "
                                       f"{demo.peak_scale * mean_rate:.0f} req/s", day.requests)
    return traces


def run_demo(out_dir: str | Path, progress: Progress | None = None,
             policies: tuple[str, ...] = DEMO_POLICIES, workers: int = 2) -> dict[str, Any]:
    """Simulate the demo fleet under ``policies`` in ``workers`` processes; write summary.json, plots and
    report.html to ``out_dir``; returns the summary."""
    pools, quota = _fleet()
    groups = [policies[i::workers] for i in range(workers) if policies[i::workers]]
    with multiprocessing.Manager() as manager, ProcessPoolExecutor(len(groups)) as executor:
        updates = manager.Queue()
        futures = [executor.submit(_simulate, group, updates) for group in groups]
        while not all(f.done() for f in futures):
            with contextlib.suppress(queue.Empty):
                update = updates.get(timeout=0.2)
                if progress is not None:
                    progress(*update)
        runs = [f.result() for f in futures]
    by_name = {r.policy: r for results, _ in runs for r in results}
    timeline = next((t for results, t in runs if any(r.policy == "inferencefleet" for r in results)), None)
    results = [by_name[name] for name in policies]
    context = Context(pools=pools, quota=quota, timeline=timeline, hours_per_second=24 / (DAY_MINUTES * 60),
                      scenario=f"the example fleet over one day compressed to {DAY_MINUTES:g} minutes")
    summary = summarize(results, context)
    summary["report"] = str(write_report(Path(out_dir), results, summary, context,
                                         title="inferencefleet demo: three tiers, one day"))
    return summary


def _fleet() -> tuple[list[InferencePool], FleetQuota]:
    examples = Path(str(resources.files("inferencefleet") / "data" / "examples"))
    return load_pools([str(examples / d.file) for d in DEMO_POOLS]), load_quota(str(examples / DEMO_QUOTA))


def _simulate(policies: tuple[str, ...], updates: Any) -> tuple[list[SimResult], Timeline]:
    """One worker: the demo fleet under ``policies``; progress goes to the ``updates`` queue."""
    pools, quota = _fleet()
    traces = demo_traces(list(zip(pools, DEMO_POOLS, strict=True)), load_trace(bundled_trace_path()))
    timeline = Timeline.for_pools(pools)
    results = run_policies(pools, traces, policies, quota=quota, timeline=timeline,
                           progress=lambda name, done, total: updates.put((name, done, total)))
    return results, timeline
