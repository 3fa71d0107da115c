"""``inferencefleet backtest``: what inferencefleet would have done with a cluster's own Prometheus history."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..redaction import redact_url
from .signals import _duration_flag

if TYPE_CHECKING:
    from rich.console import Console

    from ..sim.backtest import Backtest

DESCRIPTION = """\
Read the pools' history from Prometheus (range queries of the signals the operator reads every
tick: request rate, prompt and output token rates, ready replicas, p99 TTFT and ITL), rebuild each
pool's arrivals from it, and replay them through the planner and the simulator in shadow. Compare
with what ran: ready replicas x GPUs per replica from the same history. Prints, per pool and tier,
the GPU-hours and dollars inferencefleet would have saved (or added) and the minutes whose requests
would have missed the SLO; writes report.html, plots and summary.json to --out.

Pool specs come from -f files (the InferencePools as applied); no Kubernetes access is needed.
Pools with history but no spec are listed and skipped. Dollars: --quota's gpuPrices, else the
default price table.
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("backtest", help="replay a cluster's Prometheus history through the planner",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    parser.add_argument("-f", "--filename", action="extend", nargs="+", required=True, metavar="POOLS.yaml",
                        help="InferencePool YAML (repeatable)")
    parser.add_argument("--quota", metavar="QUOTA.yaml", help="FleetQuota YAML: prices, and budgets for the shadow")
    parser.add_argument("--since", type=_duration_flag("--since"), default=86400.0, metavar="DURATION",
                        help="how much history, e.g. 6h, 24h (default 24h)")
    parser.add_argument("--until", metavar="TIME", help="end of the history: Unix seconds or ISO 8601 (default now)")
    parser.add_argument("-n", "--namespace", help="only pools in this namespace (default: all)")
    parser.add_argument("--step", type=_duration_flag("--step"), default=30.0, metavar="DURATION",
                        help="resolution of the history (default 30s)")
    parser.add_argument("--window", type=_duration_flag("--window"), default=60.0, metavar="DURATION",
                        help="rate and quantile window of each step (default 1m, as the operator)")
    parser.add_argument("--tick", type=_duration_flag("--tick"), default=5.0, metavar="DURATION",
                        help="planner tick in the shadow replay (default 5s)")
    parser.add_argument("--bearer-token-file", metavar="FILE", help="file holding a bearer token")
    parser.add_argument("--insecure-skip-tls-verify", action="store_true", help="do not check the certificate")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for summary.json, plots, report.html")
    parser.set_defaults(func=run)


def _end(text: str | None) -> float:
    if text is None:
        return time.time()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UserError(f"--until: {text!r} is neither Unix seconds nor an ISO 8601 time "
                        "(e.g. 1733300000 or 2026-12-04T05:00:00+00:00)") from None


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..manifests import load_pools, load_quota
    from ..planner.types import pool_key
    from ..signals.history_reader import read_history
    from ..sim.backtest import backtest
    from ..sim.report import Context, summarize, write_report

    pools = load_pools(args.filename)
    quota = load_quota(args.quota) if args.quota else None
    end = _end(args.until)
    start = end - args.since
    headers = {}
    if args.bearer_token_file:
        try:
            headers["Authorization"] = f"Bearer {Path(args.bearer_token_file).read_text().strip()}"
        except OSError as error:
            raise UserError(f"--bearer-token-file {args.bearer_token_file}: {error.strerror}") from None
    histories = read_history(args.prometheus, start, end, args.step, namespace=args.namespace, window=args.window,
                             headers=headers, verify=not args.insecure_skip_tls_verify)
    console = Console()
    known = {pool_key(p) for p in pools}
    for key in sorted(set(histories) - known):
        console.print(f"{'/'.join(key)}: history but no InferencePool in -f: skipped")
    try:
        outcome = backtest(pools, histories, quota, tick=args.tick)
    except ValueError as error:
        raise UserError(f"--prometheus {redact_url(args.prometheus)}: {error} ({args.since / 3600:g} h to {_clock(end)})") from None
    for key in sorted(known - set(outcome.arrivals)):
        console.print(f"{'/'.join(key)}: no history in the range: not replayed")
    replayed = [p for p in pools if pool_key(p) in outcome.arrivals]
    scenario = (f"{args.since / 3600:g} h of history to {_clock(end)} ({sum(len(t.requests) for t in outcome.arrivals.values())} "
                f"requests rebuilt from the completion rate, step {args.step:g} s)")
    context = Context(pools=replayed, quota=quota, scenario=scenario, timeline=outcome.timeline)
    results = [outcome.what_ran, outcome.shadow]
    summary = summarize(results, context)
    summary["savings"] = savings(outcome, summary)
    rows = savings_rows(summary["savings"])
    from ..sim.report import html_table

    extra = "<h2>Saved (+) or added (-) per pool and tier</h2>" + html_table(SAVINGS_HEADER, rows, text_columns=(0, 1))
    report = write_report(Path(args.out), results, summary, context, title="inferencefleet backtest", extra=extra)
    print_savings(console, summary, rows)
    console.print(f"report: {report}")
    return 0


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at).astimezone().strftime("%Y-%m-%d %H:%M %Z")


SAVINGS_HEADER = ["pool", "tier", "GPU-h ran", "GPU-h shadow", "GPU-h saved", "$ saved",
                  "min. SLO missed, ran", "min. SLO missed, shadow"]


def savings(outcome: Backtest, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Per pool, then per tier: GPU-hours and dollars of what ran and of the shadow, and the minutes missing SLO."""
    entries = {p["policy"]: {q["pool"]: q for q in p["pools"]} for p in summary["policies"]}
    ran, shadow = entries[outcome.what_ran.policy], entries[outcome.shadow.policy]
    rows = []
    for pool, before in ran.items():
        after = shadow.get(pool, {})
        rows.append({"pool": pool, "tier": before["tier"], "gpu_hours_ran": before["gpu_hours"],
                     "gpu_hours_shadow": after.get("gpu_hours"), "dollars_ran": before["dollars"],
                     "dollars_shadow": after.get("dollars"),
                     "minutes_missing_slo_ran": before["minutes_missing_slo"],
                     "minutes_missing_slo_shadow": after.get("minutes_missing_slo", [])})
    for tier in summary["tiers"]:
        members = [r for r in rows if r["tier"] == tier and r["pool"] != "*"]
        rows.append({"pool": "*", "tier": tier,
                     **{k: sum(r[k] or 0.0 for r in members) for k in
                        ("gpu_hours_ran", "gpu_hours_shadow", "dollars_ran", "dollars_shadow")},
                     **{k: [m for r in members for m in r[k]] for k in
                        ("minutes_missing_slo_ran", "minutes_missing_slo_shadow")}})
    return rows


def savings_rows(entries: list[dict[str, Any]]) -> list[list[str]]:
    def money(value: float | None) -> str:
        return "-" if value is None else f"{value:+,.2f}"

    return [
        [e["pool"] if e["pool"] != "*" else "(all)", e["tier"], f"{e['gpu_hours_ran']:.2f}",
         f"{e['gpu_hours_shadow'] or 0.0:.2f}", f"{e['gpu_hours_ran'] - (e['gpu_hours_shadow'] or 0.0):+.2f}",
         money(None if e["dollars_ran"] is None or e["dollars_shadow"] is None
               else e["dollars_ran"] - e["dollars_shadow"]),
         str(len(e["minutes_missing_slo_ran"])), str(len(e["minutes_missing_slo_shadow"]))]
        for e in entries
    ]


def print_savings(console: Console, summary: dict[str, Any], rows: list[list[str]]) -> None:
    from rich import box
    from rich.table import Table

    from .simulate import print_summary

    print_summary(console, summary)
    table = Table(title="saved (+) or added (-) per pool and tier", box=box.SIMPLE_HEAD, padding=(0, 0),
                  show_edge=False)
    for index, column in enumerate(SAVINGS_HEADER):
        table.add_column(column, justify="left" if index < 2 else "right", no_wrap=index == 0)
    for row in rows:
        table.add_row(*row)
    console.print(table)
