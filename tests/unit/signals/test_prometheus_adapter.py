"""The adapter's HTTP behaviour (retries, errors, auth) with an in-process transport; no network."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from inferencefleet import redaction
from inferencefleet.errors import UserError
from inferencefleet.signals import prometheus
from inferencefleet.signals.prometheus import PrometheusSource

EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus, "RETRY_BACKOFF", 0.0)


def source(handler, **options) -> PrometheusSource:  # type: ignore[no-untyped-def]
    return PrometheusSource("http://prom:9090/", transport=httpx.MockTransport(handler), **options)


async def test_one_request_per_signal_plus_freshness_whatever_the_pools() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=EMPTY)

    pools = [("ns", f"pool-{i}") for i in range(500)]
    snapshot = await source(handler).snapshot(pools, now=1.0)
    assert len(seen) == 16 and set(seen) == {"/api/v1/query"}  # 13 signals, 2 DCGM, freshness
    assert len(snapshot.pools) == 500


async def test_5xx_and_connection_errors_are_retried_then_reported() -> None:
    attempted: set[bytes] = set()

    def flaky(request: httpx.Request) -> httpx.Response:
        """Refuses the first attempt of every query."""
        if request.content not in attempted:
            attempted.add(request.content)
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json=EMPTY)

    results = await source(flaky, retries=1).query_all(1.0)
    assert all(r == [] for r in results.values())

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"status": "error", "error": "overloaded"})

    results = await source(down, retries=2).query_all(1.0)
    reasons = {getattr(r, "reason", None) for r in results.values()}
    assert reasons == {"HTTP 503 from http://prom:9090: overloaded (after 3 attempts)"}


async def test_4xx_is_not_retried() -> None:
    calls = {"n": 0}

    def bad(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(400, json={"status": "error", "error": "parse error"})

    results = await source(bad, retries=2).query_all(1.0)
    assert calls["n"] == len(results)
    assert {getattr(r, "reason", None) for r in results.values()} == {"HTTP 400 from http://prom:9090: parse error"}


@pytest.mark.parametrize("status", [200, 404])
async def test_a_server_that_is_not_prometheus_is_named_on_one_line(status: int) -> None:
    page = "<!DOCTYPE html>\n<html>\n  <body><h1>Welcome</h1></body>\n</html>\n"

    def web(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=page, headers={"content-type": "text/html; charset=utf-8"})

    results = await source(web).query_all(1.0)
    phrase = "OK" if status == 200 else "Not Found"
    assert {getattr(r, "reason", None) for r in results.values()} == {
        f"HTTP {status} from http://prom:9090: {phrase} (text/html answer: not the Prometheus HTTP API)"
    }


async def test_bearer_token_is_read_from_the_file_each_time(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    headers: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        headers.add(request.headers["Authorization"])
        return httpx.Response(200, json=EMPTY)

    adapter = source(handler, bearer_token_file=str(token))
    await adapter.query_all(1.0)
    token.write_text("second")
    await adapter.query_all(1.0)
    assert headers == {"Bearer first", "Bearer second"}

    token.unlink()
    results = await adapter.query_all(1.0)
    assert all(getattr(r, "reason", "").startswith(f"bearer token file {token}: No such file") for r in results.values())


async def test_basic_auth_and_persistent_client() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"].startswith("Basic ")
        return httpx.Response(200, json=EMPTY)

    async with source(handler, basic_auth=("user", "secret")) as adapter:
        assert (await adapter.snapshot(now=1.0)).pools == []


@pytest.mark.parametrize("options, message", [
    ({"url": "prom:9090"}, "must start with http:// or https://"),
    ({"bearer_token_file": "/t", "basic_auth": ("u", "p")}, "not both"),
    ({"retries": -1}, "retries"),
    ({"ca_file": "/nonexistent/ca.pem"}, "CA file /nonexistent/ca.pem: cannot be loaded"),
])
def test_bad_configuration_is_a_user_error(options: dict[str, object], message: str) -> None:
    url = options.pop("url", "https://prom")
    with pytest.raises(UserError, match=message):
        PrometheusSource(url, **options)  # type: ignore[arg-type]


async def test_credentials_never_reach_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL's user info, a basic-auth password and a bearer token (with its newline) stay out of every
    failure reason, also when the HTTP library echoes the header it refused."""
    monkeypatch.setattr(redaction, "_secrets", set())

    def echoing(request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError(f"Illegal header value {request.headers['Authorization'].encode()!r}")

    async def reasons(adapter: PrometheusSource) -> set[str]:
        return {r.reason for r in (await adapter.query_all(1.0)).values()}  # type: ignore[union-attr]

    with_user = PrometheusSource("http://planted-user:planted%40pass@prom:9090",
                                 transport=httpx.MockTransport(echoing), retries=0)
    assert await reasons(with_user) == {"LocalProtocolError talking to http://prom:9090: Illegal header value "
                                  "b'Basic ***' (after 1 attempts)"}

    token = tmp_path / "token"
    token.write_text("planted-\ntoken\n")  # an interior newline: the library refuses the header and echoes it
    with_token = PrometheusSource("http://prom:9090", bearer_token_file=str(token),
                                  transport=httpx.MockTransport(echoing), retries=0)
    assert await reasons(with_token) == {"LocalProtocolError talking to http://prom:9090: Illegal header value "
                                   "b'Bearer ***\\n***' (after 1 attempts)"}

    def refusing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"status": "error", "error": "user:planted-password is not allowed"})

    with_password = PrometheusSource("http://prom:9090", basic_auth=("user", "planted-password"),
                                     transport=httpx.MockTransport(refusing))
    assert await reasons(with_password) == {"HTTP 401 from http://prom:9090: user:*** is not allowed"}


def test_user_info_in_the_url_is_basic_auth() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == httpx.BasicAuth("al ice", "p@ss")._auth_header
        assert "@" not in str(request.url)
        return httpx.Response(200, json=EMPTY)

    adapter = PrometheusSource("http://al%20ice:p%40ss@prom:9090", transport=httpx.MockTransport(handler))
    assert adapter.url == "http://prom:9090"
    assert all(r == [] for r in asyncio.run(adapter.query_all(1.0)).values())
    with pytest.raises(UserError, match="give one"):
        PrometheusSource("http://u:p@prom", basic_auth=("v", "q"))


async def test_requests_in_flight_by_pod_for_one_pool() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(httpx.QueryParams(request.content.decode())["query"])
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"pod": "p-a"}, "value": [1.0, "3"]}, {"metric": {"pod": "p-b"}, "value": [1.0, "NaN"]}]}})

    assert await source(handler).in_flight("serving", "chat", now=1.0) == {"p-a": 3.0}
    assert 'inferencefleet_io_pool="chat"' in asked[0] and 'namespace="serving"' in asked[0]
    assert "vllm:num_requests_running" in asked[0] and "vllm:num_requests_waiting" in asked[0]

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"status": "error", "error": "overloaded"})

    failed = await source(down, retries=0).in_flight("serving", "chat", now=1.0)
    assert getattr(failed, "reason", "") == "HTTP 503 from http://prom:9090: overloaded (after 1 attempts)"
