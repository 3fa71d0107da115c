"""Reports of simulated (or replayed) runs: summary.json, PNG plots (matplotlib Agg) and report.html.

``summarize`` turns runs into the summary document; ``verdict`` says in one sentence what it
shows; ``write_report`` writes the self-contained report (plots embedded as PNG, also written
beside it). Every policy keeps one colour in every plot, every metric one scale across policies.

Definitions (also printed in the report):
- a request is *within SLO* when its TTFT is within ``slo.ttftP99`` and its mean time per output
  token within ``slo.itlP99``;
- dollars are GPU-hours x the price of the pool's GPU type (``render.cost.report_price``: the
  FleetQuota's, else the default table); a pool with no price adds no dollars and says so;
- *$ per 1M tokens within SLO* is the dollars divided by the prompt plus output tokens of the
  requests within SLO, in millions: what a useful token cost.
"""

from __future__ import annotations

import base64
import bisect
import html
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api.v1alpha1 import FleetQuota, InferencePool
from ..planner.types import pool_key
from ..render.cost import report_price
from .fleet import SimResult
from .timeline import Shortfall, Timeline

COLOURS = {
    "inferencefleet": "#1f5fbf", "inferencefleet-loadtest": "#17becf", "hpa": "#e07b00", "keda": "#2a9d3a", "kpa": "#8e44ad",
    "static": "#7f7f7f", "oracle": "#111111", "what ran": "#c0392b",
}
"""One colour per policy in every plot."""
LABELS = {"inferencefleet": "inferencefleet", "inferencefleet-loadtest": "inferencefleet, load-tested", "hpa": "HPA", "keda": "KEDA", "kpa": "Knative KPA",
          "static": "static peak", "oracle": "oracle (clairvoyant)", "what ran": "what ran"}
SHORT = {**LABELS, "oracle": "oracle", "kpa": "KPA"}
"""Policy names in tables."""
ATTAINMENT = ("TTFT within slo.ttftP99 and the request's own p99 inter-token latency within slo.itlP99")


@dataclass(frozen=True)
class Context:
    """What the runs replayed, for the report's words, prices, budgets and time axis."""

    pools: Sequence[InferencePool]
    quota: FleetQuota | None
    scenario: str
    """What was replayed, as a phrase: 'the example fleet over one day compressed to 24 minutes'."""
    timeline: Timeline | None = None
    """The inferencefleet policy's decisions (markers, reasons, max-num-seqs, tier use)."""
    hours_per_second: float | None = None
    """Set when the run stands for a compressed day: the time axis is then the hour of that day."""
    subject: str = "inferencefleet"
    """The policy the verdict is about."""

    def price(self, pool: str) -> float | None:
        return self.prices()[pool][0]

    def prices(self) -> dict[str, tuple[float | None, str]]:
        return {"/".join(pool_key(p)): report_price(p, self.quota) for p in self.pools}

    def tiers(self) -> list[str]:
        """Tier names in priority order (highest first) when a quota is given, else as the pools list them."""
        names = list(dict.fromkeys(p.spec.tier for p in self.pools))
        if self.quota is None:
            return names
        order = {t.name: (-t.priority, t.name) for t in self.quota.spec.tiers}
        return sorted(names, key=lambda n: order.get(n, (1, n)))

    def time_axis(self, seconds: float) -> float:
        return seconds * self.hours_per_second if self.hours_per_second else seconds / 60

    @property
    def time_label(self) -> str:
        return "hour of the simulated day" if self.hours_per_second else "minutes"

    def clock(self, seconds: float) -> str:
        """A time as the report prints it: '14:30' of the day, or '12.5 min'."""
        if self.hours_per_second:
            minutes = round(seconds * self.hours_per_second * 60)
            return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"
        return f"{seconds / 60:.1f} min"


def _number(value: float | None) -> float | None:
    """JSON-safe: NaN and infinities become null."""
    return None if value is None or math.isnan(value) or math.isinf(value) else round(value, 6)


def summarize(results: Sequence[SimResult], context: Context) -> dict[str, Any]:
    """The summary.json document: one entry per policy, per tier and per pool, and the verdict."""
    prices = context.prices()
    tiers = context.tiers()
    by_name = {r.policy: r for r in results}
    policies = []
    for r in results:
        priced = any(prices["/".join(p.key)][0] is not None for p in r.pools)
        dollars = sum(p.gpu_hours * (prices["/".join(p.key)][0] or 0.0) for p in r.pools) if priced else None
        good_tokens = sum(p.good_tokens for p in r.pools)
        per_tier = {}
        for tier in tiers:
            members = [p for p in r.pools if p.tier == tier]
            requests = sum(p.requests for p in members)
            per_tier[tier] = {
                "requests": requests,
                "within_slo": _number(sum(p.good for p in members) / requests) if requests else None,
                "gpu_hours": _number(sum(p.gpu_hours for p in members)),
                "dollars": _number(sum(p.gpu_hours * (prices["/".join(p.key)][0] or 0.0) for p in members)),
            }
        entry: dict[str, Any] = {
            "policy": r.policy,
            "requests": r.requests,
            "gpu_hours": _number(r.gpu_hours),
            "dollars": _number(dollars),
            "within_slo": _number(r.attainment),
            "tiers": per_tier,
            "dollars_per_million_tokens_within_slo": _number(dollars / good_tokens * 1e6)
            if good_tokens and dollars is not None else None,
            "ttft_p99_s": _number(max(p.ttft_p99 for p in r.pools)),
            "itl_p99_s": _number(max(p.itl_p99 for p in r.pools)),
            "requests_per_wall_second": _number(r.requests_per_wall_second),
            "pools": [
                {
                    "pool": "/".join(p.key), "tier": p.tier, "requests": p.requests,
                    "gpu_hours": _number(p.gpu_hours),
                    "dollars": _number(p.gpu_hours * (prices["/".join(p.key)][0] or 0.0)),
                    "within_slo": _number(p.attainment), "ttft_ok": p.ttft_ok, "itl_ok": p.itl_ok,
                    "rejected": p.rejected, "peak_replicas": p.peak_replicas,
                    "ttft_p99_s": _number(p.ttft_p99), "itl_p99_s": _number(p.itl_p99),
                    "minutes_missing_slo": list(p.missed_windows),
                }
                for p in r.pools
            ],
        }
        for reference in ("oracle", "hpa"):
            if reference in by_name and by_name[reference].gpu_hours > 0:
                entry[f"gpu_hours_vs_{reference}"] = _number(r.gpu_hours / by_name[reference].gpu_hours)
        policies.append(entry)
    summary: dict[str, Any] = {
        "scenario": context.scenario,
        "horizon_s": _number(max((r.horizon for r in results), default=0.0)),
        "within_slo_definition": ATTAINMENT,
        "prices": {pool: {"dollars_per_gpu_hour": price, "source": source} for pool, (price, source) in prices.items()},
        "slo": {"/".join(pool_key(p)): {"ttft_p99_s": p.spec.autoscaling.slo.ttftP99,
                                        "itl_p99_s": p.spec.autoscaling.slo.itlP99} for p in context.pools},
        "tiers": tiers,
        "policies": policies,
    }
    summary["verdict"] = verdict(summary, context.subject)
    return summary


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def verdict(summary: Mapping[str, Any], subject: str = "inferencefleet") -> str:
    """One sentence: what ``subject`` spent and met, against every other policy."""
    entries = {p["policy"]: p for p in summary["policies"]}
    if subject not in entries:
        return f"{summary['scenario']}: " + "; ".join(
            f"{LABELS.get(n, n)} spent {_dollars(p['dollars'])} ({p['gpu_hours']:.1f} GPU-h) with "
            f"{_pct(p['within_slo'])} of requests within their SLOs" for n, p in entries.items()) + "."
    own = entries[subject]
    tiers = ", ".join(f"{t} {_pct(own['tiers'][t]['within_slo'])}" for t in summary["tiers"]
                      if own["tiers"][t]["requests"])
    others = []
    for name, p in entries.items():
        if name == subject:
            continue
        if own["gpu_hours"] and p["gpu_hours"]:
            ratio = own["gpu_hours"] / p["gpu_hours"]
            cost = f"{abs(1 - ratio) * 100:.0f}% {'less' if ratio < 1 else 'more'} than {LABELS.get(name, name)}"
        else:
            cost = f"against {LABELS.get(name, name)}"
        others.append(f"{cost} ({_dollars(p['dollars'])}, {_pct(p['within_slo'])} within SLO)")
    return (f"On {summary['scenario']}, {LABELS.get(subject, subject)} spent {_dollars(own['dollars'])} "
            f"({own['gpu_hours']:.1f} GPU-h) with {_pct(own['within_slo'])} of requests within their SLOs "
            f"({tiers})" + (": " + "; ".join(others) if others else "") + ".")


def _columns(summary: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(header, cell of one policy entry) of the verdict table; a comparison column only when it applies."""
    def ratio(key: str) -> Any:
        return lambda p: "-" if p.get(key) is None else f"{p[key]:.2f}x"

    columns: list[tuple[str, Any]] = [
        ("policy", lambda p: SHORT.get(p["policy"], p["policy"])),
        ("GPU-h", lambda p: "-" if p["gpu_hours"] is None else f"{p['gpu_hours']:.1f}"),
        ("dollars", lambda p: _dollars(p["dollars"])),
        ("in SLO", lambda p: _pct(p["within_slo"])),
        *[(tier, lambda p, tier=tier: _pct(p["tiers"][tier]["within_slo"])) for tier in summary["tiers"]],
        ("$/1M ok tok", lambda p: _dollars(p["dollars_per_million_tokens_within_slo"])),
    ]
    for reference, header in (("oracle", "vs oracle"), ("hpa", "vs HPA")):
        if any(p.get(f"gpu_hours_vs_{reference}") is not None for p in summary["policies"]):
            columns.append((header, ratio(f"gpu_hours_vs_{reference}")))
    return columns


TABLE_NOTE = ("in SLO: share of requests within their SLOs, overall then per tier; $/1M ok tok: dollars per "
              "million prompt and output tokens of the requests within SLO; vs X: GPU-hours divided by X's")


def table_header(summary: Mapping[str, Any]) -> list[str]:
    """Columns of the verdict table, printed and in the report (TABLE_NOTE explains them)."""
    return [header for header, _ in _columns(summary)]


def table_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """One row per policy: its verdict in numbers."""
    columns = _columns(summary)
    return [[cell(p) for _, cell in columns] for p in summary["policies"]]


# ---------------------------------------------------------------------------------------------- html
def write_report(out: Path, results: Sequence[SimResult], summary: Mapping[str, Any], context: Context,
                 title: str = "inferencefleet simulation", extra: str = "") -> Path:
    """Write summary.json, the plots and report.html into ``out``; returns the report path. ``extra`` is
    HTML placed after the verdict table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plots = _plots(out, results, context)
    table = html_table(table_header(summary), table_rows(summary))
    prices = "; ".join(
        f"{html.escape(pool)}: " + (f"${v['dollars_per_gpu_hour']:g} per GPU-hour ({html.escape(v['source'])})"
                                    if v["dollars_per_gpu_hour"] is not None else f"no dollars ({html.escape(v['source'])})")
        for pool, v in summary["prices"].items())
    slos = "; ".join(f"{html.escape(pool)}: TTFT p99 {v['ttft_p99_s']:g} s, ITL p99 {v['itl_p99_s'] * 1000:g} ms"
                     for pool, v in summary["slo"].items())
    sections = [f"<h2>Fleet</h2>{_figure(plots['fleet'])}"]
    for tier in context.tiers():
        sections.append(f"<h2>Tier {html.escape(tier)}</h2>{_figure(plots[f'tier-{tier}'])}"
                        f"{_shortfall_table(context, tier)}")
    for pool in context.pools:
        key = "/".join(pool_key(pool))
        sections.append(f"<h2>Pool {html.escape(key)} ({html.escape(pool.spec.tier)})</h2>"
                        f"{_figure(plots[f'pool-{pool.metadata.name}'])}{_decision_table(context, key)}")
    report = out / "report.html"
    report.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p class='verdict' id='verdict'>{html.escape(summary['verdict'])}</p>{table}"
        f"<p class='notes'>Within SLO: {html.escape(summary['within_slo_definition'])}. SLOs: {slos}. "
        f"Prices: {prices}. Columns: {html.escape(TABLE_NOTE)}.</p>{extra}"
        + "".join(sections)
        + "<p class='notes'>Data: summary.json. Plots: the PNG files beside this report.</p></body></html>\n"
    )
    return report


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1180px;color:#222}"
    ".verdict{font-size:1.25em;line-height:1.4;border-left:5px solid #1f5fbf;padding:.4em .8em;background:#f3f6fb}"
    "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px}"
    "td{text-align:right}td.text{text-align:left}th{background:#f4f4f4}"
    "img{max-width:100%}figure{margin:.5em 0}figcaption{color:#555}.notes{color:#555;font-size:.9em}"
    "details{margin:.4em 0 1.2em}summary{cursor:pointer;color:#1f5fbf}"
    ".reasons td:last-child{text-align:left;font-size:.85em}"
)


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: Sequence[int] = (0,),
                titles: Sequence[str] | None = None, css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for index, row in enumerate(rows):
        cells = "".join(f"<td{' class=text' if i in text_columns else ''}>{html.escape(c)}</td>"
                        for i, c in enumerate(row))
        title = f" title='{html.escape(titles[index], quote=True)}'" if titles else ""
        body.append(f"<tr{title}>{cells}</tr>")
    return f"<table class='{css}'><tr>{head}</tr>{''.join(body)}</table>"


def _figure(plot: tuple[Path, str]) -> str:
    path, caption = plot
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(caption, quote=True)}' "
            f"data-file='{html.escape(path.name, quote=True)}'><figcaption>{html.escape(caption)}</figcaption></figure>")


def _decision_table(context: Context, pool: str) -> str:
    if context.timeline is None:
        return ""
    marks = [m for m in context.timeline.marks if m.pool == pool]
    if not marks:
        return f"<p class='notes'>{LABELS[context.subject]} changed nothing on this pool.</p>"
    rows = [[context.clock(m.t), m.action, f"{m.from_} -> {m.to}", m.reason] for m in marks]
    table = html_table(["time", "action", "change", "reason"], rows, text_columns=(1, 3),
                        titles=[m.reason for m in marks], css="reasons")
    return (f"<details><summary>{len(marks)} decisions of {LABELS[context.subject]} on this pool, each with "
            f"its reason (the markers on the replicas panel)</summary>{table}</details>")


def _episodes(shortfalls: Sequence[Shortfall], gap: float) -> list[list[Shortfall]]:
    """Consecutive QuotaLimited ticks of one pool, split where more than ``gap`` seconds pass."""
    episodes: dict[str, list[list[Shortfall]]] = defaultdict(list)
    for s in shortfalls:
        runs = episodes[s.pool]
        if runs and s.t - runs[-1][-1].t <= gap:
            runs[-1].append(s)
        else:
            runs.append([s])
    return sorted((run for runs in episodes.values() for run in runs), key=lambda run: run[0].t)


def _shortfall_table(context: Context, tier: str) -> str:
    if context.timeline is None or context.quota is None:
        return ""
    gpus = {"/".join(pool_key(p)): p.spec.topology.gpus for p in context.pools}
    limited = [s for s in context.timeline.shortfalls if s.tier == tier]
    if not limited:
        return "<p class='notes'>The quota never held this tier's pools below what they asked for.</p>"
    rows, titles = [], []
    for run in _episodes(limited, gap=30.0):
        worst = max(run, key=lambda s: s.needed - s.granted)
        rows.append([run[0].pool, f"{context.clock(run[0].t)} - {context.clock(run[-1].t)}",
                     f"{min(s.granted for s in run)}", f"{worst.needed}",
                     f"{(worst.needed - worst.granted) * gpus[worst.pool]}", worst.message])
        titles.append(worst.message)
    table = html_table(["pool", "while", "fewest replicas granted", "replicas the forecast needed",
                         "most GPUs held back", "the quota's message (QuotaLimited)"], rows,
                        text_columns=(0, 1, 5), titles=titles, css="reasons")
    return f"<details open><summary>When the quota held this tier back ({len(rows)} times)</summary>{table}</details>"


# ---------------------------------------------------------------------------------------------- plots
def _pool_series(result: SimResult, pool: str, column: str) -> tuple[list[float], list[float]]:
    rows = [row for row in result.series if row["pool"] == pool]
    return [float(row["t"]) for row in rows], [float(row[column]) for row in rows]


def _tier_series(result: SimResult, tier: str, column: str, prices: Mapping[str, float | None]) -> tuple[
        list[float], list[float]]:
    """Per time: the tier's GPUs (column 'gpus') or dollars per hour (column 'dollars')."""
    totals: dict[float, float] = {}
    for row in result.series:
        t = float(row["t"])
        totals.setdefault(t, 0.0)
        if row["tier"] == tier:
            value = float(row["gpus"])
            totals[t] += value * (prices[str(row["pool"])] or 0.0) if column == "dollars" else value
    times = sorted(totals)
    return times, [totals[t] for t in times]


def _style(policy: str) -> dict[str, Any]:
    return {"color": COLOURS.get(policy, "#444444"), "label": LABELS.get(policy, policy),
            "linewidth": 2.2 if policy in ("inferencefleet", "what ran") else 1.2,
            "linestyle": "--" if policy == "oracle" else "-", "zorder": 3 if policy == "inferencefleet" else 2}


def _plots(out: Path, results: Sequence[SimResult], context: Context) -> dict[str, tuple[Path, str]]:
    """Write every PNG; returns name -> (path, caption)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, tuple[Path, str]] = {}
    prices = {pool: price for pool, (price, _) in context.prices().items()}
    x = context.time_axis
    end = x(max((r.horizon for r in results), default=0.0))

    def save(fig: Any, name: str, caption: str) -> None:
        fig.axes[-1].set_xlabel(context.time_label)
        for axis in fig.axes:
            axis.set_xlim(0, end)
            axis.grid(alpha=0.3)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        plots[name] = (path, caption)

    fig, fleet = plt.subplots(1, 1, figsize=(11, 3.2))
    for r in results:
        per_tier = [_tier_series(r, tier, "dollars", prices) for tier in context.tiers()]
        times = per_tier[0][0] if per_tier else []
        totals = [sum(values[i] for _, values in per_tier) for i in range(len(times))]
        fleet.step([x(v) for v in times], totals, where="post", **_style(r.policy))
    if context.quota is not None and context.quota.spec.limits.dollarsPerHour is not None:
        fleet.axhline(context.quota.spec.limits.dollarsPerHour, color="#c0392b", linestyle=":", linewidth=1.5,
                      label=f"fleet budget ${context.quota.spec.limits.dollarsPerHour:g}/h")
    fleet.set_ylabel("dollars per hour")
    fleet.set_ylim(bottom=0)
    fleet.legend(loc="upper left", fontsize="small", ncol=3)
    save(fig, "fleet", "The whole fleet: dollars per hour" + (" against the FleetQuota's budget (only inferencefleet "
                                                              "knows budgets)" if context.quota is not None else ""))

    for tier in context.tiers():
        spec = context.quota.spec.tier(tier) if context.quota is not None else None
        fig, (money, gpus) = plt.subplots(2, 1, figsize=(11, 5.6), sharex=True)
        for r in results:
            t, dph = _tier_series(r, tier, "dollars", prices)
            money.step([x(v) for v in t], dph, where="post", **_style(r.policy))
            t, g = _tier_series(r, tier, "gpus", prices)
            gpus.step([x(v) for v in t], g, where="post", **_style(r.policy))
        if spec is not None and spec.limit.dollarsPerHour is not None:
            money.axhline(spec.limit.dollarsPerHour, color="#c0392b", linestyle=":", linewidth=1.5,
                          label=f"tier budget ${spec.limit.dollarsPerHour:g}/h")
        if spec is not None and spec.limit.gpus is not None:
            gpus.axhline(spec.limit.gpus, color="#c0392b", linestyle=":", linewidth=1.5,
                         label=f"tier limit {spec.limit.gpus} GPUs")
        if spec is not None and spec.guaranteed.gpus:
            gpus.axhline(spec.guaranteed.gpus, color="#2a9d3a", linestyle=":", linewidth=1.5,
                         label=f"guaranteed {spec.guaranteed.gpus} GPUs (above it: borrowed)")
        _held_back(gpus, context, tier, results)
        money.set_ylabel("dollars per hour")
        gpus.set_ylabel("GPUs")
        money.set_ylim(bottom=0)
        gpus.set_ylim(bottom=0)
        money.legend(loc="upper left", fontsize="small", ncol=3)
        gpus.legend(loc="upper left", fontsize="small", ncol=2)
        budget = "" if context.quota is None else " against its budget"
        save(fig, f"tier-{tier}", f"Tier {tier}: dollars per hour{budget}, and GPUs in use "
                                  "(guaranteed, borrowed above the guaranteed line, held back by the quota in red)")

    demand_top = max((max(_pool_series(results[0], "/".join(pool_key(p)), "arrivals_per_s")[1], default=0.0)
                      for p in context.pools), default=0.0) if results else 0.0
    for pool in context.pools:
        key = "/".join(pool_key(pool))
        slo = pool.spec.autoscaling.slo
        fig, axes = plt.subplots(5, 1, figsize=(11, 10.5), sharex=True,
                                 gridspec_kw={"height_ratios": [1, 1.5, 1.2, 1.2, 0.9]})
        demand, replicas, ttft, itl, batch = axes
        if results:
            t, rate = _pool_series(results[0], key, "arrivals_per_s")
            demand.fill_between([x(v) for v in t], rate, step="post", color="#999999", alpha=0.6)
            demand.set_ylim(0, demand_top * 1.05 or 1)
        demand.set_ylabel("requests/s")
        for r in results:
            t, n = _pool_series(r, key, "replicas")
            replicas.step([x(v) for v in t], n, where="post", **_style(r.policy))
            for axis, column in ((ttft, "ttft_p99"), (itl, "itl_p99")):
                t, v = _pool_series(r, key, column)
                axis.plot([x(s) for s in t], v, **{**_style(r.policy), "linewidth": 1.0})
            steps = _batch_steps(r.policy, pool, key, context)
            if steps:
                starts, chosen = zip(*steps, strict=True)
                batch.step([x(v) for v in starts] + [end], [*chosen, chosen[-1]], where="post", **_style(r.policy))
        _decision_markers(replicas, context, key)
        ttft.axhline(slo.ttftP99, color="#c0392b", linestyle=":", linewidth=1.5, label=f"SLO {slo.ttftP99:g} s")
        itl.axhline(slo.itlP99, color="#c0392b", linestyle=":", linewidth=1.5, label=f"SLO {slo.itlP99 * 1000:g} ms")
        for axis in (ttft, itl):
            axis.set_yscale("log")
            axis.legend(loc="upper right", fontsize="small")
        replicas.set_ylabel("replicas")
        replicas.set_ylim(0, pool.spec.replicas.max + 1)
        replicas.legend(loc="upper left", fontsize="small", ncol=4)
        ttft.set_ylabel("p99 TTFT (s)")
        itl.set_ylabel("p99 ITL (s)")
        batch.set_ylabel("max-num-seqs")
        batch.set_ylim(0, pool.spec.batching.maxNumSeqs.max * 1.15)
        save(fig, f"pool-{pool.metadata.name}",
             f"{key}: demand; replicas (inferencefleet's decisions marked: up, down, held back by the quota); "
             "p99 TTFT and ITL over the last minute against the SLO; max-num-seqs")
    return plots


def _batch_steps(policy: str, pool: InferencePool, key: str, context: Context) -> list[tuple[float, int]]:
    """(time, --max-num-seqs) steps: the planner's choices for the subject, the spec's maximum for the others."""
    if policy == context.subject and context.timeline is not None and key in context.timeline.batch:
        return context.timeline.batch[key]
    batching = pool.spec.batching
    return [(0.0, min(batching.maxNumSeqs.max, batching.maxNumBatchedTokens))]


def _decision_markers(axis: Any, context: Context, key: str) -> None:
    if context.timeline is None:
        return
    x = context.time_axis
    colour = COLOURS.get(context.subject, "#1f5fbf")
    for action, marker in (("ScaleUp", "^"), ("ScaleDown", "v")):
        marks = [m for m in context.timeline.marks if m.pool == key and m.action == action]
        if marks:
            axis.scatter([x(m.t) for m in marks], [m.to for m in marks], marker=marker, color=colour, s=22,
                         zorder=4, label=f"{action} ({len(marks)})")
    limited = [s for s in context.timeline.shortfalls if s.pool == key]
    if limited:
        axis.scatter([x(s.t) for s in limited], [s.granted for s in limited], marker="x", color="#c0392b", s=14,
                     zorder=4, label=f"held back by the quota ({len(limited)} ticks)")


def _held_back(axis: Any, context: Context, tier: str, results: Sequence[SimResult]) -> None:
    """Red area above the subject's GPU line: GPUs its pools' forecasts needed but the quota withheld."""
    if context.timeline is None or not results:
        return
    subject = next((r for r in results if r.policy == context.subject), None)
    limited = [s for s in context.timeline.shortfalls if s.tier == tier]
    if subject is None or not limited:
        return
    gpus = {"/".join(pool_key(p)): p.spec.topology.gpus for p in context.pools}
    short: dict[float, float] = defaultdict(float)
    for s in limited:
        short[s.t] += (s.needed - s.granted) * gpus[s.pool]
    ticks = sorted({sample.t for sample in context.timeline.tiers} | set(short))
    times, used = _tier_series(subject, tier, "gpus", {})
    held = [short.get(ticks[i - 1], 0.0) if (i := bisect.bisect_right(ticks, t)) else 0.0 for t in times]
    x = context.time_axis
    axis.fill_between([x(t) for t in times], used, [u + h for u, h in zip(used, held, strict=True)], step="post",
                      color="#c0392b", alpha=0.35, label="held back by the quota (inferencefleet)")
