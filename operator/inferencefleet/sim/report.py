"""Simulation reports: summary.json, PNG plots (matplotlib Agg) and report.html.

``summarize`` turns runs into the summary document; the cost gap to the oracle is section 5's
(GPUh_policy - GPUh_oracle) / (GPUh_static_peak - GPUh_oracle): 0 is as good as the clairvoyant
bound, 1 is no better than provisioning for the peak all the time.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..api.v1alpha1 import InferencePool
from ..planner.types import pool_key
from .fleet import SimResult

PLOTS = {
    "demand_vs_replicas.png": "Demand and replicas",
    "latency_vs_slo.png": "p99 TTFT and ITL (as Prometheus shows them, 1-minute window) against the SLO",
    "dollars.png": "Dollars spent over time",
    "gpus_per_tier.png": "GPUs per tier",
}


def _number(value: float) -> float | None:
    """JSON-safe: NaN and infinities become null."""
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


def slos_of(pools: Sequence[InferencePool]) -> dict[str, dict[str, float]]:
    """"namespace/name" -> the pool's p99 SLOs in seconds (the ``slos`` argument of ``summarize``)."""
    return {
        "/".join(pool_key(p)): {"ttft_p99_s": p.spec.autoscaling.slo.ttftP99, "itl_p99_s": p.spec.autoscaling.slo.itlP99}
        for p in pools
    }


def summarize(results: Sequence[SimResult], *, trace: str, slos: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """The summary.json document: one entry per policy, with ratios against the oracle, static and HPA."""
    by_name = {r.policy: r for r in results}
    oracle, static = by_name.get("oracle"), by_name.get("static")
    policies = []
    for r in results:
        entry: dict[str, Any] = {
            "policy": r.policy,
            "requests": r.requests,
            "gpu_hours": _number(r.gpu_hours),
            "dollars": _number(r.dollars),
            "slo_attainment": _number(r.attainment),
            "windows_meeting_slo": sum(p.good_windows for p in r.pools),
            "windows": sum(p.windows for p in r.pools),
            "ttft_p99_s": _number(max(p.ttft_p99 for p in r.pools)),
            "itl_p99_s": _number(max(p.itl_p99 for p in r.pools)),
            "e2e_p99_s": _number(max(p.e2e_p99 for p in r.pools)),
            "requests_per_wall_second": _number(r.requests_per_wall_second),
            "pools": [
                {
                    "pool": f"{p.key[0]}/{p.key[1]}", "tier": p.tier, "requests": p.requests,
                    "gpu_hours": _number(p.gpu_hours), "dollars": _number(p.dollars),
                    "slo_attainment": _number(p.attainment), "ttft_ok": p.ttft_ok, "itl_ok": p.itl_ok,
                    "gaps_p99_ok": p.gaps_ok, "rejected": p.rejected, "peak_replicas": p.peak_replicas,
                    "ttft_p99_s": _number(p.ttft_p99), "itl_p99_s": _number(p.itl_p99),
                    "e2e_p99_s": _number(p.e2e_p99),
                }
                for p in r.pools
            ],
        }
        if oracle is not None and oracle.gpu_hours > 0:
            entry["gpu_hours_vs_oracle"] = _number(r.gpu_hours / oracle.gpu_hours)
            if static is not None and static.gpu_hours > oracle.gpu_hours:
                entry["cost_gap_to_oracle"] = _number(
                    (r.gpu_hours - oracle.gpu_hours) / (static.gpu_hours - oracle.gpu_hours)
                )
        if "hpa" in by_name and by_name["hpa"].gpu_hours > 0:
            entry["gpu_hours_vs_hpa"] = _number(r.gpu_hours / by_name["hpa"].gpu_hours)
        policies.append(entry)
    return {
        "trace": trace,
        "horizon_s": _number(max((r.horizon for r in results), default=0.0)),
        "slo": {pool: dict(values) for pool, values in slos.items()},
        "attainment_definition": "share of requests with TTFT <= slo.ttftP99 and mean time per output token "
                                 "<= slo.itlP99",
        "policies": policies,
    }


def table_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """Rows of the printed table: policy, GPU-h, $, attainment, p99s, vs oracle, vs HPA, gap."""
    def fmt(value: Any, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    return [
        [
            p["policy"], fmt(p["gpu_hours"], "{:.2f}"), fmt(p["dollars"], "{:.2f}"),
            fmt(p["slo_attainment"] and 100 * p["slo_attainment"], "{:.2f}%"),
            fmt(p["ttft_p99_s"], "{:.2f}s"), fmt(p["itl_p99_s"] and 1000 * p["itl_p99_s"], "{:.0f}ms"),
            fmt(p.get("gpu_hours_vs_oracle"), "{:.2f}x"), fmt(p.get("gpu_hours_vs_hpa"), "{:.2f}x"),
            fmt(p.get("cost_gap_to_oracle"), "{:.2f}"),
        ]
        for p in summary["policies"]
    ]


TABLE_HEADER = ["policy", "GPU-h", "$", "met SLO", "TTFT p99", "ITL p99", "/oracle", "/HPA", "gap"]


def write_report(out: Path, results: Sequence[SimResult], summary: Mapping[str, Any]) -> Path:
    """Write summary.json, the plots and report.html into ``out``; returns the report path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _plots(out, results, summary)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in table_rows(summary)
    )
    header = "".join(f"<th>{html.escape(h)}</th>" for h in TABLE_HEADER)
    figures = "".join(
        f'<figure><img src="{name}" alt="{html.escape(title)}"><figcaption>{html.escape(title)}</figcaption></figure>'
        for name, title in PLOTS.items()
    )
    slos = "; ".join(f"{html.escape(pool)}: TTFT p99 {v['ttft_p99_s']:g}s, ITL p99 {v['itl_p99_s'] * 1000:g}ms"
                     for pool, v in summary["slo"].items())
    report = out / "report.html"
    report.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>inferencefleet simulation</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}</style></head><body>"
        f"<h1>inferencefleet simulation</h1><p>Trace: {html.escape(summary['trace'])}; "
        f"{summary['horizon_s']:.0f} s simulated. SLOs: {slos}. "
        f"Met SLO = {html.escape(summary['attainment_definition'])}. Cost gap = (GPU-h - oracle) / "
        "(static peak - oracle).</p>"
        f"<table><tr>{header}</tr>{rows}</table>{figures}"
        "<p>Data: summary.json. Generated by <code>inferencefleet simulate</code>.</p></body></html>\n"
    )
    return report


def _series(result: SimResult, column: str) -> tuple[list[float], list[float]]:
    """Time (minutes) and ``column`` summed over pools."""
    totals: dict[float, float] = {}
    for row in result.series:
        value = float(row[column])
        totals[float(row["t"])] = totals.get(float(row["t"]), 0.0) + (0.0 if math.isnan(value) else value)
    times = sorted(totals)
    return [t / 60 for t in times], [totals[t] for t in times]


def _plots(out: Path, results: Sequence[SimResult], summary: Mapping[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5))
    demand = ax.twinx()
    if results:
        t, rate = _series(results[0], "arrivals_per_s")
        demand.fill_between(t, rate, color="0.85", step="post", label="arrivals/s")
    for r in results:
        t, replicas = _series(r, "replicas")
        ax.step(t, replicas, where="post", label=r.policy)
    ax.set_zorder(demand.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set(xlabel="minutes", ylabel="replicas (requested or serving)")
    demand.set_ylabel("arrivals per second (grey)")
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "demand_vs_replicas.png", dpi=90)
    plt.close(fig)

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for r in results:
        for axis, column in ((top, "ttft_p99"), (bottom, "itl_p99")):
            times = [float(row["t"]) / 60 for row in r.series]
            values = [float(row[column]) for row in r.series]
            axis.plot(times, values, label=r.policy, linewidth=1)
    for pool, slo in summary["slo"].items():
        top.axhline(slo["ttft_p99_s"], color="red", linestyle="--", label=f"SLO {pool}")
        bottom.axhline(slo["itl_p99_s"], color="red", linestyle="--", label=f"SLO {pool}")
    top.set(ylabel="TTFT p99 (s)", yscale="log")
    bottom.set(ylabel="ITL p99 (s)", xlabel="minutes", yscale="log")
    top.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "latency_vs_slo.png", dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    for r in results:
        t, dollars = _series(r, "dollars")
        ax.plot(t, dollars, label=r.policy)
    ax.set(xlabel="minutes", ylabel="dollars (cumulative)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "dollars.png", dpi=90)
    plt.close(fig)

    fig, axes = plt.subplots(len(results) or 1, 1, figsize=(10, 1.8 * max(len(results), 1) + 1), sharex=True,
                             squeeze=False)
    for axis, r in zip(axes[:, 0], results, strict=False):
        tiers: dict[str, dict[float, float]] = {}
        for row in r.series:
            tier = tiers.setdefault(str(row["tier"]), {})
            tier[float(row["t"])] = tier.get(float(row["t"]), 0.0) + float(row["gpus"])
        times = sorted({t for tier in tiers.values() for t in tier})
        axis.stackplot([t / 60 for t in times], *[[tier.get(t, 0.0) for t in times] for tier in tiers.values()],
                       labels=list(tiers), step="post")
        axis.set_ylabel(f"{r.policy}\nGPUs", fontsize="small")
        axis.legend(loc="upper left", fontsize="x-small")
    axes[-1, 0].set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(out / "gpus_per_tier.png", dpi=90)
    plt.close(fig)
