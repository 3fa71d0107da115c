"""``inferencefleet load``: closed-loop clients of a pool's OpenAI-compatible endpoint."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import InvalidInput

DEFAULT_REQUEST = '{"prompt": "Hello", "max_tokens": 64, "stream": true}'


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "load",
        help="send closed-loop load to an OpenAI-compatible endpoint (a pool's Service) until stopped",
        description=(
            "Run CLIENTS closed-loop clients against URL: each POSTs the request, reads the whole (streamed) "
            "response and sends the next, on a new connection each time so that a Service spreads them over "
            "its endpoints. Refused connections are retried; a status other than 200 stops the load with "
            "exit code 1. A tally line (completed and retried requests) is printed every --report-every "
            "seconds. Stops on SIGTERM or SIGINT, or after --duration."
        ),
    )
    parser.add_argument("url", help="completions endpoint, e.g. http://my-pool.serving:8000/v1/completions")
    parser.add_argument("--clients", type=int, default=1, help="concurrent closed-loop clients (default 1)")
    parser.add_argument("--request", default=DEFAULT_REQUEST, metavar="JSON",
                        help=f"request body (default {DEFAULT_REQUEST})")
    parser.add_argument("--report-every", type=float, default=5.0, metavar="SECONDS",
                        help="seconds between tally lines (default 5)")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds (default: run until stopped)")
    parser.set_defaults(func=run)


def parse_request(text: str) -> dict[str, Any]:
    """The --request body: a JSON object."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"--request must be a JSON object: {error}") from None
    if not isinstance(body, dict):
        raise InvalidInput(f"--request must be a JSON object, got {type(body).__name__}")
    return body


def run(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from .. import loadtest

    if args.clients < 1:
        raise InvalidInput(f"--clients must be at least 1, got {args.clients}")
    if args.report_every <= 0:
        raise InvalidInput(f"--report-every must be more than 0 seconds, got {args.report_every:g}")
    if args.duration is not None and args.duration <= 0:
        raise InvalidInput(f"--duration must be more than 0 seconds, got {args.duration:g}")
    if not args.url.startswith(("http://", "https://")):
        raise InvalidInput(f"URL must start with http:// or https://, got {args.url!r}")
    asyncio.run(loadtest.run(args.url, args.clients, parse_request(args.request), args.report_every, sys.stdout,
                             args.duration))
    return 0
