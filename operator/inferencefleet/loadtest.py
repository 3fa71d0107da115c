"""Closed-loop load on an OpenAI-compatible endpoint, such as a pool's Service: ``inferencefleet load``.

Each client sends one streamed request, reads the whole response, and sends the next. Every request opens
its own connection, so a Kubernetes Service spreads the requests over its ready endpoints instead of
pinning a client to one. A refused or dropped connection (no ready endpoint yet, a Service not created
yet) is retried, as a client would; an answer other than 200 stops the load with an error, because the
server rejected the request itself.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from .errors import InvalidInput

RETRY_AFTER_S = 0.2
"""Pause before a client retries a refused connection."""
TRANSPORT_ERRORS = (httpx.TransportError,)
"""Failures of the connection rather than of the request: no endpoint, DNS not yet answering, a reset."""


@dataclass
class Tally:
    """What the clients have done so far."""

    completed: int = 0
    retried: int = 0

    def line(self, clients: int, started: float) -> str:
        return (f"clients={clients} completed={self.completed} retried={self.retried} "
                f"elapsed={time.monotonic() - started:.0f}s")


class RequestRejected(Exception):
    """The endpoint answered a request with a status other than 200."""


async def client(http: httpx.AsyncClient, url: str, request: dict[str, Any], tally: Tally) -> None:
    """One closed-loop client until cancelled."""
    while True:
        try:
            async with http.stream("POST", url, json=request) as response:
                if response.status_code != 200:
                    body = (await response.aread()).decode(errors="replace")[:500]
                    raise RequestRejected(f"{url} answered {response.status_code}: {body}")
                async for _ in response.aiter_raw():
                    pass
            tally.completed += 1
        except TRANSPORT_ERRORS:
            tally.retried += 1
            await asyncio.sleep(RETRY_AFTER_S)


async def run(url: str, clients: int, request: dict[str, Any], report_every_s: float, out: TextIO,
              duration_s: float | None = None) -> Tally:
    """Run ``clients`` clients until SIGTERM, SIGINT or ``duration_s`` has passed, printing a tally line every
    ``report_every_s``. Raises InvalidInput when the endpoint rejects a request."""
    tally, started = Tally(), time.monotonic()
    deadline = None if duration_s is None else started + duration_s
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    timeout = httpx.Timeout(connect=5.0, read=None, write=10.0, pool=None)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        tasks = {asyncio.create_task(client(http, url, request, tally)) for _ in range(clients)}
        stopped = asyncio.create_task(stop.wait())
        try:
            while not stopped.done():
                left = report_every_s if deadline is None else min(report_every_s, deadline - time.monotonic())
                if left <= 0:
                    break
                done, _ = await asyncio.wait({*tasks, stopped}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                for task in done & tasks:
                    error = task.exception()
                    if isinstance(error, RequestRejected):
                        raise InvalidInput(str(error))
                    raise RuntimeError("a load client stopped") from error
                print(tally.line(clients, started), file=out, flush=True)
        finally:
            for task in (*tasks, stopped):
                task.cancel()
            await asyncio.gather(*tasks, stopped, return_exceptions=True)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
    print(tally.line(clients, started), file=out, flush=True)
    return tally
