"""``inferencefleet engine-sim`` as a process: starts on a free port, serves, stops on SIGTERM; bad flags."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from inferencefleet.planner.capacity import REFERENCES

COMMAND = [sys.executable, "-m", "inferencefleet.cli", "engine-sim"]


def test_serves_on_the_printed_port_and_stops_on_sigterm():
    process = subprocess.Popen([*COMMAND, "--profile", "llama3-8b-h100-tp1", "--port", "0", "--model", "m",
                                "--time-scale", "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert "llama3-8b-h100-tp1" in line, line + process.stderr.read()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(f"{url}/v1/completions", data=json.dumps({"prompt": "hi"}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["usage"]["completion_tokens"] == 16
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_help_lists_every_profile():
    out = subprocess.run([*COMMAND, "--help"], capture_output=True, text=True, check=True).stdout
    assert all(name in " ".join(out.split()) for name in REFERENCES)


@pytest.mark.parametrize(("flags", "message"), [
    (["--profile", "gpt-9"], "--profile: unknown profile 'gpt-9'; allowed: "),
    (["--time-scale", "0"], "--time-scale must be a positive finite number"),
    (["--max-num-seqs", "0"], "--max-num-seqs must be >= 1"),
    (["--max-num-seqs", "64", "--max-num-batched-tokens", "32"], "--max-num-batched-tokens must be >= --max-num-seqs"),
    (["--max-model-len", "100000000"], "--max-model-len must be in 2.."),
    (["--port", "70000"], "--port must be in 0..65535"),
])
def test_bad_flags_fail_with_one_line(flags, message):
    args = {"--profile": "llama3-8b-h100-tp1", "--port": "0"}
    for key, value in zip(flags[::2], flags[1::2], strict=True):
        args[key] = value
    argv = [item for pair in args.items() for item in pair]
    result = subprocess.run([*COMMAND, *argv], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    if "unknown profile" in message:
        assert all(name in result.stderr for name in REFERENCES)


def test_a_busy_port_is_a_one_line_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*COMMAND, "--profile", "llama3-8b-h100-tp1", "--port", str(port)],
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"--host/--port: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert result.stderr.count("\n") == 1
