"""The Prometheus adapter: the only network I/O of ``signals`` (async, never blocks the event loop).

One tick issues one query per signal plus one freshness query, all concurrently, whatever the
number of pools. A query that fails after bounded retries makes that signal missing for every pool
("query failed: ..."); it never raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from inferencefleet.errors import UserError
from inferencefleet.redaction import redact, redact_url, remember, remember_basic_auth, split_user_info

from .. import observability
from .collect import QueryFailed, QueryResult, build_snapshot, parse_by_pod, parse_vector
from .model import PoolKey, SignalsSnapshot
from .promql import FRESHNESS, freshness_query, in_flight_query, query, signals

RETRY_BACKOFF = 0.2
"""Seconds before the first retry; doubled for each further one."""


class PrometheusSource:
    """Reads every pool's signals from the Prometheus HTTP API at ``url``.

    Use as ``async with PrometheusSource(url) as source: await source.snapshot(pools, now)`` to
    keep one connection pool across ticks; without ``async with`` each call opens its own client.
    """

    def __init__(
        self,
        url: str,
        bearer_token_file: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        ca_file: str | None = None,
        verify: bool = True,
        timeout: float = 5.0,
        retries: int = 2,
        *,
        namespace: str | None = None,
        window: float = 60.0,
        quantiles: tuple[float, float] = (0.5, 0.99),
        stale_after: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"Prometheus URL {redact_url(url)!r} must start with http:// or https://")
        url, url_auth = split_user_info(url)
        if url_auth and basic_auth:
            raise UserError("Prometheus auth: the URL holds a user and basic auth is also given: give one")
        basic_auth = basic_auth or url_auth
        if bearer_token_file and basic_auth:
            raise UserError("Prometheus auth: give a bearer token file or basic auth, not both")
        if retries < 0 or timeout <= 0 or stale_after <= 0:
            raise UserError(
                f"Prometheus client: retries ({retries}) must be >= 0, timeout ({timeout:g}s) and "
                f"stale_after ({stale_after:g}s) must be positive"
            )
        if basic_auth:
            remember_basic_auth(*basic_auth)
        self.url = url.rstrip("/")
        """Without user info: credentials travel only in the Authorization header."""
        self.bearer_token_file = bearer_token_file
        self.basic_auth = basic_auth
        self.verify: bool | ssl.SSLContext = verify
        if ca_file is not None and verify:
            try:
                self.verify = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as error:
                raise UserError(f"Prometheus CA file {ca_file}: cannot be loaded: {error}") from error
        self.timeout = timeout
        self.retries = retries
        self.namespace = namespace
        self.stale_after = stale_after
        self.signals = signals(quantiles)
        self.queries = {s.name: query(s, namespace, window) for s in self.signals}
        self.queries[FRESHNESS] = freshness_query(namespace)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url,
            auth=httpx.BasicAuth(*self.basic_auth) if self.basic_auth else None,
            verify=self.verify,
            timeout=self.timeout,
            transport=self._transport,
        )

    async def __aenter__(self) -> PrometheusSource:
        self._client = self._new_client()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _headers(self) -> dict[str, str]:
        """Auth headers; the token file is re-read every time so rotated tokens are picked up."""
        if not self.bearer_token_file:
            return {}
        token = Path(self.bearer_token_file).read_text()
        remember(token)
        return {"Authorization": f"Bearer {token.strip()}"}

    async def _query(self, client: httpx.AsyncClient, expr: str, at: float,
                     parse: Callable[[Any], Any] = parse_vector) -> Any:
        """One instant query with bounded retries on connection errors and 5xx; never raises."""
        try:
            headers = self._headers()
        except OSError as error:
            return QueryFailed(f"bearer token file {self.bearer_token_file}: {error.strerror}")
        reason = "not attempted"
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(RETRY_BACKOFF * 2 ** (attempt - 1))
            try:
                response = await client.post("/api/v1/query", data={"query": expr, "time": f"{at:.3f}"},
                                             headers=headers)
            except httpx.TransportError as error:
                reason = f"{type(error).__name__} talking to {self.url}: {error}"
                continue
            if response.status_code >= 400 or not _is_json(response):
                reason = f"HTTP {response.status_code} from {self.url}: {_error_text(response)}"
                if response.status_code >= 500:
                    continue
                return QueryFailed(reason)
            try:
                return parse(response.json())
            except (ValueError, KeyError, TypeError) as error:
                return QueryFailed(f"unexpected answer from {self.url}: {error}")
        return QueryFailed(f"{reason} (after {self.retries + 1} attempts)")

    async def _timed(self, client: httpx.AsyncClient, expr: str, at: float,
                     parse: Callable[[Any], Any] = parse_vector) -> Any:
        """``_query`` with its latency and failure counted in the operator's own metrics."""
        with observability.QUERY_SECONDS.time():
            result = await self._query(client, expr, at, parse)
        if isinstance(result, QueryFailed):
            observability.QUERY_FAILURES.inc()
            return QueryFailed(redact(result.reason))  # libraries may echo what they were given
        return result

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[httpx.AsyncClient]:
        """The persistent client inside ``async with``, else a client for this call only."""
        if self._client is not None:
            yield self._client
            return
        async with self._new_client() as client:
            yield client

    async def in_flight(self, namespace: str, pool: str, now: float | None = None) -> dict[str, float] | QueryFailed:
        """Requests in flight (running plus waiting) on each scraped pod of one pool, by pod name."""
        at = time.time() if now is None else now
        async with self._session() as client:
            answer: dict[str, float] | QueryFailed = await self._timed(client, in_flight_query(namespace, pool), at,
                                                                      parse=parse_by_pod)
        return answer

    async def query_all(self, now: float) -> dict[str, QueryResult]:
        """Every signal's query (and the freshness query) evaluated at ``now``, issued concurrently."""
        names = list(self.queries)
        async with self._session() as client:
            results = await asyncio.gather(*(self._timed(client, self.queries[n], now) for n in names))
        return dict(zip(names, results, strict=True))

    async def snapshot(self, pools: Iterable[PoolKey] | None = None, now: float | None = None) -> SignalsSnapshot:
        """Signals of ``pools`` ((namespace, name) pairs; default every pool seen) at ``now`` (default: now)."""
        at = time.time() if now is None else now
        results = await self.query_all(at)
        return build_snapshot(self.signals, results, at, self.stale_after, pools)


def _is_json(response: httpx.Response) -> bool:
    return "json" in response.headers.get("content-type", "")


def _error_text(response: httpx.Response) -> str:
    """Prometheus's own error message, or what kind of answer this is, on one line."""
    if not _is_json(response):
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        return f"{response.reason_phrase} ({kind} answer: not the Prometheus HTTP API)"
    try:
        body: Any = response.json()
    except ValueError:
        return "invalid JSON"
    return " ".join(str(body.get("error") if isinstance(body, dict) and body.get("error") else body).split())
