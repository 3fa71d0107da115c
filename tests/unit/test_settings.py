"""OperatorSettings from the environment: every variable parsed, every bad value one line naming its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferencefleet import cli
from inferencefleet.errors import UserError
from inferencefleet.settings import OperatorSettings

BASIC = {"PROMETHEUS_USERNAME": "operator", "PROMETHEUS_PASSWORD_FILE": "/secrets/password"}


@pytest.mark.parametrize("environ, expected", [
    ({}, {"prometheus_url": None, "prometheus_username": None, "prometheus_insecure_skip_tls_verify": False,
          "prometheus_timeout": 5.0}),
    ({"PROMETHEUS_URL": "https://prom:9090", "INFERENCEFLEET_PROMETHEUS_TIMEOUT": "800ms",
      "PROMETHEUS_CA_FILE": "/ca/ca.crt"},
     {"prometheus_url": "https://prom:9090", "prometheus_timeout": 0.8, "prometheus_ca_file": "/ca/ca.crt"}),
    (BASIC, {"prometheus_username": "operator", "prometheus_password_file": "/secrets/password"}),
    ({"PROMETHEUS_BEARER_TOKEN_FILE": "/token"}, {"prometheus_bearer_token_file": "/token"}),
    ({"PROMETHEUS_INSECURE_SKIP_TLS_VERIFY": "true"}, {"prometheus_insecure_skip_tls_verify": True}),
    ({"PROMETHEUS_INSECURE_SKIP_TLS_VERIFY": "TRUE"}, {"prometheus_insecure_skip_tls_verify": True}),
    ({"PROMETHEUS_INSECURE_SKIP_TLS_VERIFY": "1"}, {"prometheus_insecure_skip_tls_verify": True}),
    ({"PROMETHEUS_INSECURE_SKIP_TLS_VERIFY": "false"}, {"prometheus_insecure_skip_tls_verify": False}),
    ({"PROMETHEUS_INSECURE_SKIP_TLS_VERIFY": "0"}, {"prometheus_insecure_skip_tls_verify": False}),
    ({"PROMETHEUS_USERNAME": " ", "PROMETHEUS_INSECURE_SKIP_TLS_VERIFY": ""}, {"prometheus_username": None}),
    ({"INFERENCEFLEET_TICK_INTERVAL": "1m", "INFERENCEFLEET_NAMESPACE": "serving"},
     {"tick_interval": 60.0, "namespace": "serving"}),
])
def test_good_values(environ: dict[str, str], expected: dict[str, object]) -> None:
    settings = OperatorSettings.from_env(environ)
    assert {name: getattr(settings, name) for name in expected} == expected


@pytest.mark.parametrize("environ, message", [
    ({"PROMETHEUS_URL": "prom:9090"}, "PROMETHEUS_URL: must start with http:// or https:// (got 'prom:9090')"),
    ({"INFERENCEFLEET_PROMETHEUS_TIMEOUT": "5"}, "INFERENCEFLEET_PROMETHEUS_TIMEOUT: must be a duration string"),
    ({"INFERENCEFLEET_TICK_INTERVAL": "2h"}, "INFERENCEFLEET_TICK_INTERVAL: Input should be less than or equal to 3600"),
    ({"PROMETHEUS_INSECURE_SKIP_TLS_VERIFY": "yes"},
     "PROMETHEUS_INSECURE_SKIP_TLS_VERIFY: must be true, false, 1 or 0, got 'yes'"),
    ({"PROMETHEUS_USERNAME": "operator"}, "PROMETHEUS_USERNAME and PROMETHEUS_PASSWORD_FILE: set both or neither"),
    ({"PROMETHEUS_PASSWORD_FILE": "/p"}, "PROMETHEUS_USERNAME and PROMETHEUS_PASSWORD_FILE: set both or neither"),
    ({**BASIC, "PROMETHEUS_BEARER_TOKEN_FILE": "/token"},
     "PROMETHEUS_BEARER_TOKEN_FILE and PROMETHEUS_USERNAME: use a bearer token or basic auth, not both"),
    ({"PROMETHEUS_URL": "http://u:planted@prom", "PROMETHEUS_BEARER_TOKEN_FILE": "/token"},
     "PROMETHEUS_URL holds a user: set no PROMETHEUS_USERNAME or PROMETHEUS_BEARER_TOKEN_FILE beside it"),
    ({"PROMETHEUS_URL": "prom://u:planted@host"}, "PROMETHEUS_URL: must start with http:// or https:// (got 'prom://***@host')"),
])
def test_bad_values_are_one_line_naming_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(UserError) as error:
        OperatorSettings.from_env(environ)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_basic_auth_reads_the_password_file(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    settings = OperatorSettings.from_env({**BASIC, "PROMETHEUS_PASSWORD_FILE": str(password)})
    assert settings.prometheus_basic_auth() == ("operator", "s3cret")
    assert OperatorSettings.from_env({}).prometheus_basic_auth() is None


def test_run_stops_on_one_line_when_the_password_file_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    monkeypatch.setenv("PROMETHEUS_USERNAME", "operator")
    monkeypatch.setenv("PROMETHEUS_PASSWORD_FILE", str(missing))
    assert cli.main(["run"]) == 2
    assert capsys.readouterr().err == (
        f"inferencefleet run: error: PROMETHEUS_PASSWORD_FILE {missing}: cannot be read: No such file or directory\n")
