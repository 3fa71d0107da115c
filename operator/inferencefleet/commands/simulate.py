"""``inferencefleet simulate``: replay a request trace through simulated pools under autoscaling policies."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    from rich.console import Console

POLICY_CHOICES = ("inferencefleet", "inferencefleet-loadtest", "hpa", "keda", "kpa", "static", "oracle", "all")


def register(subparsers: Any) -> None:
    """Add the ``simulate`` sub-command."""
    parser = subparsers.add_parser(
        "simulate",
        help="replay a request trace through simulated pools under the operator and baseline autoscalers",
        description="Replay a request trace through simulated vLLM-style replicas (continuous batching, "
        "chunked prefill, KV cache, calibrated step times, cold starts) driven by the operator's planner "
        "or by HPA, KEDA, Knative KPA, static peak provisioning or the clairvoyant oracle. Writes "
        "summary.json, PNG plots and report.html to --out and prints the summary table.",
    )
    parser.add_argument("-f", "--filename", action="extend", nargs="+", required=True, metavar="POOL.yaml",
                        help="InferencePool YAML (repeatable; every pool replays the whole trace)")
    parser.add_argument("--quota", metavar="QUOTA.yaml", help="FleetQuota YAML (prices, tiers; none: no caps, $0)")
    parser.add_argument("--trace", metavar="FILE",
                        help="request trace (default: the bundled 14-minute Azure 2023 conversation slice)")
    parser.add_argument("--trace-format", default="auto", choices=("auto", "csv", "jsonl", "envelope"),
                        help="trace format (default: auto, by extension and header)")
    parser.add_argument("--lengths", metavar="FILE",
                        help="per-request trace to draw lengths from for --trace-format envelope (default: bundled)")
    parser.add_argument("--scale", type=float, default=1.0, metavar="X",
                        help="multiply the request rate (default 1): each request is repeated within its second, "
                             "the copies taking the lengths of other requests of the same minute")
    parser.add_argument("--compress", type=float, default=1.0, metavar="X",
                        help="divide arrival times, replaying X times faster (default 1)")
    parser.add_argument("--duration", type=float, metavar="S", help="replay only the first S seconds")
    parser.add_argument("--policy", default="all", choices=POLICY_CHOICES, help="policy to simulate (default all)")
    parser.add_argument("--tick", type=float, default=5.0, metavar="S", help="planner tick interval (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed for rate scaling and envelope sampling")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for summary.json, plots, report.html")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..extras import require
    from ..manifests import load_pools, load_quota
    from ..planner.types import pool_key
    from ..sim.compare import POLICIES, run_policies
    from ..sim.report import Context, summarize, write_report
    from ..sim.timeline import Timeline
    from ..sim.traces import bundled_trace_path, compress, load_trace, scale_rate, truncate

    require("sim")
    if not args.tick > 0:
        raise InvalidInput(f"--tick: must be > 0 seconds (got {args.tick})")
    pools = load_pools(args.filename)
    keys = [pool_key(p) for p in pools]
    if len(set(keys)) != len(keys):
        raise InvalidInput("-f: the same InferencePool (namespace/name) is given twice")
    quota = load_quota(args.quota) if args.quota else None
    may_be_envelope = args.trace_format in ("auto", "envelope")
    lengths = load_trace(args.lengths or bundled_trace_path()) if may_be_envelope else None
    trace = load_trace(args.trace or bundled_trace_path(), args.trace_format, lengths=lengths, seed=args.seed)
    trace = scale_rate(compress(trace, args.compress), args.scale, seed=args.seed)
    if args.duration is not None:
        trace = truncate(trace, args.duration)
    if not trace.requests:
        raise InvalidInput(f"--duration: no request arrives in the first {args.duration:g} seconds")
    policies = POLICIES if args.policy == "all" else (args.policy,)

    console = Console()
    timeline = Timeline.for_pools(pools)
    with policy_progress(console, policies) as progress:
        try:
            results = run_policies(pools, {k: trace for k in keys}, policies, quota=quota, tick=args.tick,
                                   progress=progress, timeline=timeline)
        except ValueError as error:
            raise InvalidInput(str(error)) from None
    quota_text = f"FleetQuota {quota.metadata.name}" if quota is not None else "no FleetQuota (no budgets)"
    scenario = (f"{trace.name} ({len(trace.requests)} requests over {trace.duration / 60:.1f} min, peak "
                f"{max(trace.window_rates(60)):.1f} req/s in a minute; {quota_text})")
    context = Context(pools=pools, quota=quota, scenario=scenario, timeline=timeline)
    summary = summarize(results, context)
    report = write_report(Path(args.out), results, summary, context)
    print_summary(console, summary)
    console.print(f"report: {report}")
    return 0


@contextmanager
def policy_progress(console: Console, policies: Iterable[str]) -> Iterator[Callable[[str, float, float], None]]:
    """A progress bar per policy; yields the callback the simulator reports simulated seconds to."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description:>15}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console) as bar:
        tasks = {name: bar.add_task(name, total=1.0) for name in policies}

        def progress(name: str, done: float, total: float) -> None:
            bar.update(tasks[name], completed=done, total=total or 1.0)

        yield progress
        for task in tasks.values():
            bar.update(task, completed=bar.tasks[task].total)


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    """One verdict per policy (a table row each), the verdict sentence and how dollars were priced."""
    from rich import box
    from rich.table import Table

    from ..sim.report import TABLE_NOTE, table_header, table_rows

    table = Table(title=summary["scenario"], caption=TABLE_NOTE, box=box.SIMPLE_HEAD, padding=(0, 0),
                  show_edge=False)
    for index, column in enumerate(table_header(summary)):
        table.add_column(column, justify="right", no_wrap=index == 0)
    for row in table_rows(summary):
        table.add_row(*row)
    console.print(table)
    console.print(summary["verdict"])
    for pool, price in summary["prices"].items():
        if price["dollars_per_gpu_hour"] is None:
            console.print(f"{pool}: no dollars: {price['source']}")
        elif not price["source"].startswith("FleetQuota"):
            console.print(f"{pool}: priced at ${price['dollars_per_gpu_hour']:g} per GPU-hour ({price['source']})")
