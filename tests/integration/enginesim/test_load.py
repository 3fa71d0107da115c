"""``inferencefleet load`` against the engine simulator: closed-loop clients, retries, rejections, SIGTERM."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys

import pytest

from inferencefleet import loadtest
from inferencefleet.cli import main
from inferencefleet.errors import InvalidInput

from .conftest import Start, metric_samples, value

REQUEST = {"prompt": "hi", "max_tokens": 8, "stream": True, "sim": {"prompt_tokens": 50}}
COMMAND = [sys.executable, "-m", "inferencefleet.cli", "load"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_every_request_the_clients_count_is_one_the_engine_served(start_engine: Start) -> None:
    engine = await start_engine(time_scale=200.0, max_num_seqs=2)
    out = io.StringIO()
    tally = await loadtest.run(str(engine.make_url("/v1/completions")), 4, REQUEST, 0.2, out, duration_s=1.0)
    served = value(await metric_samples(engine), "vllm:request_success_total", finished_reason="length")
    assert tally.completed > 4 and tally.retried == 0
    assert served >= tally.completed  # the clients hung up on at most their last requests
    assert served <= tally.completed + 4
    lines = out.getvalue().splitlines()
    assert len(lines) >= 5 and lines[-1].startswith(f"clients=4 completed={tally.completed} retried=0")


async def test_refused_connections_are_retried_not_fatal() -> None:
    tally = await loadtest.run(f"http://127.0.0.1:{closed_port()}/v1/completions", 2, REQUEST, 0.1,
                               io.StringIO(), duration_s=0.5)
    assert tally.completed == 0 and tally.retried >= 2


async def test_a_rejected_request_stops_the_load_with_the_status_and_the_reason(start_engine: Start) -> None:
    engine = await start_engine(max_model_len=100)
    with pytest.raises(InvalidInput, match=r"answered 400: .*maximum context length is 100 tokens"):
        await loadtest.run(str(engine.make_url("/v1/completions")), 2, REQUEST | {"sim": {"prompt_tokens": 500}},
                           0.1, io.StringIO(), duration_s=5.0)


@pytest.mark.parametrize(("flags", "message"), [
    (["--clients", "0"], "--clients must be at least 1, got 0"),
    (["--request", "{not json"], "--request must be a JSON object"),
    (["--request", "[1]"], "--request must be a JSON object, got list"),
    (["--duration", "-1"], "--duration must be more than 0 seconds, got -1"),
])
def test_bad_flags_are_named(flags: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "http://127.0.0.1:1/v1/completions", *flags]) == 1
    assert message in capsys.readouterr().err


def test_a_url_without_a_scheme_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "my-pool:8000/v1/completions"]) == 1
    assert "URL must start with http:// or https://, got 'my-pool:8000/v1/completions'" in capsys.readouterr().err


def test_sigterm_stops_the_clients_and_prints_the_tally() -> None:
    process = subprocess.Popen([*COMMAND, f"http://127.0.0.1:{closed_port()}/v1/completions", "--clients", "3",
                                "--report-every", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith("clients=3 completed=0 retried="), first + process.stderr.read()  # type: ignore[union-attr]
    finally:
        process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert out.splitlines()[-1].startswith("clients=3 completed=0 retried=")
