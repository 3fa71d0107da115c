"""``inferencefleet signals`` basic auth (--username, --password-file) against an in-process HTTP server."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from inferencefleet import cli

EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}
CREDENTIALS = "Basic " + base64.b64encode(b"operator:s3cret").decode()


class BasicAuthPrometheus(BaseHTTPRequestHandler):
    """Answers queries with an empty vector when the basic-auth credentials are operator:s3cret, else 401."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        ok = self.headers.get("Authorization") == CREDENTIALS
        body = json.dumps(EMPTY if ok else {"status": "error", "error": "unauthorized"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BasicAuthPrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_basic_auth_from_username_and_password_file(url: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    assert cli.main(["signals", "--prometheus", url, "--username", "operator", "--password-file", str(password)]) == 0
    assert "no pools have series in Prometheus" in capsys.readouterr().out

    password.write_text("wrong")
    assert cli.main(["signals", "--prometheus", url, "--username", "operator", "--password-file", str(password)]) == 2
    assert "HTTP 401" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--username", "operator"], "--username and --password-file: give both or neither"),
    (["--password-file", "/p"], "--username and --password-file: give both or neither"),
    (["--username", "operator", "--password-file", "/nonexistent/p"],
     "--password-file /nonexistent/p: cannot be read: No such file or directory"),
])
def test_bad_basic_auth_flags_are_one_line(flags: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["signals", "--prometheus", "http://127.0.0.1:9", *flags]) == 2
    assert capsys.readouterr().err == f"inferencefleet signals: error: {message}\n"
