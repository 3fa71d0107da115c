"""The demo: the bundled 8B example pool on the bundled Azure trace, every policy, a report.

``run_demo(out_dir)`` is what ``make demo`` runs: no cluster, no network. The trace (14 minutes of
the Azure 2023 conversation trace, CC-BY 4.0) is replayed at 12x its request rate, so the
free-tier 8B pool (1 H100 per replica, 60 s cold start) needs several replicas at the peak.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from ..manifests import load_pools, load_quota
from ..planner.types import pool_key
from .compare import POLICIES, Progress, run_policies
from .report import slos_of, summarize, write_report
from .traces import bundled_trace_path, load_trace, scale_rate

DEMO_POOL = "llama3-8b-free.yaml"
DEMO_QUOTA = "quota.yaml"
DEMO_RATE_SCALE = 12.0


def run_demo(out_dir: str | Path, progress: Progress | None = None) -> dict[str, Any]:
    """Simulate every policy, write summary.json, plots and report.html to ``out_dir``; returns the summary."""
    examples = Path(str(resources.files("inferencefleet") / "data" / "examples"))
    (pool,) = load_pools([str(examples / DEMO_POOL)])
    quota = load_quota(str(examples / DEMO_QUOTA))
    trace = scale_rate(load_trace(bundled_trace_path()), DEMO_RATE_SCALE)
    results = run_policies([pool], {pool_key(pool): trace}, POLICIES, quota=quota, progress=progress)
    summary = summarize(results, trace=trace.name, slos=slos_of([pool]))
    summary["report"] = str(write_report(Path(out_dir), results, summary))
    return summary
