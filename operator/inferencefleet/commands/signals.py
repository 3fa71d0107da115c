"""``inferencefleet signals``: what the operator would see for every pool right now."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from inferencefleet.api.durations import format_duration, parse_duration
from inferencefleet.errors import UserError

if TYPE_CHECKING:
    from inferencefleet.signals.model import Sample, SignalsSnapshot

DESCRIPTION = """\
Query Prometheus exactly as the operator does each tick (one query per signal for all pools) and
print every pool's signals; a missing signal is shown with the reason.

-o json prints the SignalsSnapshot document: {"at": <unix time>, "pools": [{"namespace", "pool",
"at", and per signal (request_rate, prompt_tokens_per_second, output_tokens_per_second, running,
waiting, kv_cache_usage, ttft_p50, ttft_p99, itl_p50, itl_p99, e2e_p99, ready_replicas, scraped_replicas
(pods whose engine gauges the last scrape holds), and the
optional DCGM accounting signals gpu_power_watts, gpu_utilization) an object {"value": float|null,
"at": unix time|null, "missing": reason|null}}]}. Rates are per second, latencies in seconds,
kv_cache_usage and gpu_utilization 0..1. This is the input format of `inferencefleet plan --signals`.
"""


def _duration_flag(flag: str) -> Callable[[str], float]:
    """An argparse type parsing a positive duration; errors name ``flag``."""

    def parse(text: str) -> float:
        try:
            seconds = parse_duration(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{flag} {error}") from error
        if seconds <= 0:
            raise argparse.ArgumentTypeError(f"{flag} must be longer than 0s, got {text!r}")
        return seconds

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "signals", help="print every pool's signals as read from Prometheus",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--prometheus", required=True, metavar="URL",
                        help="Prometheus base URL, e.g. http://prometheus.monitoring:9090")
    parser.add_argument("-n", "--namespace", help="only pools in this namespace (default: all)")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table", help="output format")
    parser.add_argument("--window", type=_duration_flag("--window"), default=60.0, metavar="DURATION",
                        help="rate and quantile window, e.g. 30s, 1m, 5m (default 1m)")
    parser.add_argument("--stale-after", type=_duration_flag("--stale-after"), default=120.0,
                        metavar="DURATION", help="a pool whose last scrape is older is missing (default 2m)")
    parser.add_argument("--timeout", type=_duration_flag("--timeout"), default=5.0, metavar="DURATION",
                        help="per-query timeout (default 5s)")
    parser.add_argument("--bearer-token-file", metavar="FILE", help="file holding a bearer token")
    parser.add_argument("--username", help="basic-auth username (with --password-file)")
    parser.add_argument("--password-file", metavar="FILE", help="file holding the basic-auth password")
    parser.add_argument("--ca-file", metavar="FILE", help="CA bundle to verify Prometheus's TLS certificate")
    parser.add_argument("--insecure-skip-tls-verify", action="store_true", help="do not verify TLS certificates")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inferencefleet.settings import read_password
    from inferencefleet.signals.collect import QueryFailed, build_snapshot
    from inferencefleet.signals.prometheus import PrometheusSource

    if (args.username is None) != (args.password_file is None):
        raise UserError("--username and --password-file: give both or neither")
    basic_auth = None
    if args.username is not None:
        basic_auth = (args.username, read_password(args.password_file, "--password-file"))
    source = PrometheusSource(
        args.prometheus, bearer_token_file=args.bearer_token_file, basic_auth=basic_auth, ca_file=args.ca_file,
        verify=not args.insecure_skip_tls_verify, timeout=args.timeout,
        namespace=args.namespace, window=args.window, stale_after=args.stale_after,
    )
    now = time.time()
    results = asyncio.run(source.query_all(now))
    failures = [r.reason for r in results.values() if isinstance(r, QueryFailed)]
    if len(failures) == len(results):
        raise UserError(f"--prometheus {args.prometheus}: every query failed, e.g. {failures[0]}")
    snapshot = build_snapshot(source.signals, results, now, source.stale_after)
    if args.output == "json":
        print(snapshot.model_dump_json(indent=2))
    else:
        _print_table(snapshot)
    return 0


def _format(name: str, sample: Sample) -> str:
    """A present value in the signal's unit: latencies as durations, rates per second, KV and GPU use in percent."""
    value = sample.value
    assert value is not None
    if name.startswith(("ttft", "itl", "e2e")):
        return format_duration(round(value, 4))
    if name in ("kv_cache_usage", "gpu_utilization"):
        return f"{value:.1%}"
    if name == "gpu_power_watts":
        return f"{value:.0f} W"
    if name.endswith(("_rate", "_per_second")):
        return f"{value:.4g}/s"
    return f"{value:g}"


def _print_table(snapshot: SignalsSnapshot) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from inferencefleet.signals.model import ACCOUNTING_NAMES, SIGNAL_NAMES
    from inferencefleet.signals.status import rfc3339

    console = Console(width=max(Console().width, 120))
    if not snapshot.pools:
        console.print(f"no pools have series in Prometheus at {rfc3339(snapshot.at)}")
        return
    table = Table(title=f"signals at {rfc3339(snapshot.at)}", show_lines=False)
    for column in ("NAMESPACE", "POOL", "SIGNAL", "VALUE", "AT / MISSING BECAUSE"):
        table.add_column(column, overflow="fold")
    for pool in snapshot.pools:
        for index, name in enumerate((*SIGNAL_NAMES, *ACCOUNTING_NAMES)):
            sample = pool.sample(name)
            ident = (pool.namespace, pool.pool) if index == 0 else ("", "")
            if sample.ok:
                at = rfc3339(sample.at) if sample.at is not None else ""
                table.add_row(*ident, name, _format(name, sample), at)
            else:
                table.add_row(*ident, name, "-", Text(sample.missing or "missing", style="yellow"))
        table.add_section()
    console.print(table)
