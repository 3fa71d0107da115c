"""TLS against a real Prometheus serving https with a certificate from a private CA (made with openssl).

Verification is on by default: without the CA every query fails and says why; with ``ca_file`` (or
``--ca-file``) the same Prometheus answers.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferencefleet import cli
from inferencefleet.signals.collect import QueryFailed
from inferencefleet.signals.prometheus import PrometheusSource
from inferencefleet.signals.testing import prometheus

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl(*args: str | Path) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl not found: install the Debian package 'openssl' (make test does)")
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL, CA file) of a Prometheus on https://127.0.0.1 with a certificate signed by a private CA."""
    tmp = tmp_path_factory.mktemp("tls")
    ca, ca_key, cert, key, csr, ext = (tmp / n for n in ("ca.pem", "ca.key", "cert.pem", "cert.key", "csr", "ext"))
    openssl("req", "-x509", *EC, "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=inferencefleet test CA")
    openssl("req", *EC, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
            "-days", "1", "-extfile", ext)
    with prometheus(tmp / "data", tls=(cert, key)) as url:
        yield url, ca


async def test_tls_is_verified_by_default_and_a_custom_ca_is_trusted(https: tuple[str, Path]) -> None:
    url, ca = https
    assert url.startswith("https://")
    unverified = await PrometheusSource(url, retries=0).query_all(1.0)
    assert all(isinstance(r, QueryFailed) and "CERTIFICATE_VERIFY_FAILED" in r.reason for r in unverified.values())

    trusted = await PrometheusSource(url, ca_file=str(ca), retries=0).query_all(1.0)
    assert all(result == [] for result in trusted.values())  # answered: an empty Prometheus has no pools
    skipped = await PrometheusSource(url, verify=False, retries=0).query_all(1.0)
    assert all(result == [] for result in skipped.values())


def test_command_ca_file(https: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    url, ca = https
    assert cli.main(["signals", "--prometheus", url, "--ca-file", str(ca)]) == 0
    assert "no pools have series in Prometheus" in capsys.readouterr().out
    assert cli.main(["signals", "--prometheus", url]) == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1 and "CERTIFICATE_VERIFY_FAILED" in error
