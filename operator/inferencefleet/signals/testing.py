"""A real Prometheus for tests and benchmarks: backfilled history or live scrapes on 127.0.0.1.

Needs the ``prometheus`` and ``promtool`` binaries (Debian package ``prometheus``; ``make test``
installs it). Nothing here is used by the operator itself.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

INSTALL_HINT = "install the Debian package prometheus (make test does it)"

Point = tuple[str, Mapping[str, str], float, float]
"""(metric name, labels, Unix time in seconds, value)."""


class PrometheusMissing(RuntimeError):
    """The prometheus or promtool binary is not installed."""


def binary(name: str) -> str:
    """Path of ``prometheus`` or ``promtool``; PrometheusMissing says how to install it."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        raise PrometheusMissing(f"{name} not found: {INSTALL_HINT}")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(points: Iterable[Point]) -> str:
    """OpenMetrics text of ``points``: each metric's series grouped, samples in time order, ``# EOF``."""
    families: dict[str, dict[tuple[tuple[str, str], ...], list[tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for name, labels, at, value in points:
        families[name][tuple(sorted(labels.items()))].append((at, value))
    lines: list[str] = []
    for name, series in families.items():
        for label_pairs, samples in series.items():
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in label_pairs)
            lines.extend(f"{name}{{{text}}} {value!r} {at:.3f}" for at, value in sorted(samples))
    return "\n".join([*lines, "# EOF", ""])


def backfill(points: Iterable[Point], data_dir: Path) -> None:
    """Write ``points`` into TSDB blocks in ``data_dir`` with ``promtool tsdb create-blocks-from openmetrics``."""
    source = data_dir.parent / f"{data_dir.name}.om"
    source.write_text(openmetrics(points))
    data_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode:
        raise RuntimeError(f"promtool create-blocks-from failed: {done.stderr.strip() or done.stdout.strip()}")


@contextmanager
def prometheus(data_dir: Path, config: str = "global: {}\n", ready_within: float = 30.0,
               tls: tuple[Path, Path] | None = None, host: str = "127.0.0.1") -> Iterator[str]:
    """Run Prometheus on ``data_dir`` with ``config`` (YAML) on a free port of ``host`` (loopback unless pods
    must reach it); yields its URL.

    With ``tls`` (certificate file, key file) it serves https only.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    config_file = data_dir.parent / f"{data_dir.name}.yml"
    config_file.write_text(config)
    flags = []
    if tls is not None:
        web_file = data_dir.parent / f"{data_dir.name}.web.yml"
        web_file.write_text(f"tls_server_config: {{cert_file: '{tls[0]}', key_file: '{tls[1]}'}}\n")
        flags.append(f"--web.config.file={web_file}")
    port = free_port()
    log = (data_dir.parent / f"{data_dir.name}.log").open("w+")
    process = subprocess.Popen(
        [binary("prometheus"), f"--config.file={config_file}", f"--storage.tsdb.path={data_dir}",
         f"--web.listen-address={host}:{port}", "--log.level=warn", *flags],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"{'https' if tls else 'http'}://{host}:{port}"
    try:
        _wait_ready(url, process, log, ready_within)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: IO[str], within: float) -> None:
    unverified = ssl.create_default_context()  # readiness only: the tests check the certificate themselves
    unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}: {_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1, context=unverified) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"prometheus not ready within {within:g}s: {_tail(log)}")


def _tail(log: IO[str]) -> str:
    log.seek(0)
    return log.read()[-2000:]
