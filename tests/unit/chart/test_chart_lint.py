"""The Helm chart passes `helm lint` and renders as intended (Helm v4's own Go code, through the helm-sdkpy wheel)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from inferencefleet.settings import ENV, OperatorSettings

CHART = Path(__file__).resolve().parents[3] / "charts" / "inferencefleet"


@pytest.fixture
def render_deployment(render):
    """The operator Deployment Helm renders with the given values."""

    def deployment(**values: Any) -> dict[str, Any]:
        [found] = [o for o in render(**values) if o["kind"] == "Deployment"]
        return found

    return deployment


def mounted(pod: dict[str, Any], path: str) -> tuple[str, str, str]:
    """(volume kind, object name, key) of the file at ``path`` in the operator container, through its mounts."""
    container = pod["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(Path(path).parent))
    assert mount.get("readOnly") is True, mount
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    kind = "secret" if "secret" in volume else "configMap"
    source = volume[kind]
    [item] = [i for i in source["items"] if i["path"] == Path(path).name]
    return kind, source["secretName" if kind == "secret" else "name"], item["key"]


def test_chart_lints_without_errors(helm_errors):
    assert helm_errors(CHART) == [], f"helm lint errors in {CHART}"


def test_lint_catches_a_broken_template(tmp_path, helm_errors):
    broken = tmp_path / "inferencefleet"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "broken.yaml").write_text("{{ .Values.replicas | noSuchFunction }}\n")
    assert any(m["Path"].startswith("templates") for m in helm_errors(broken))


@pytest.mark.parametrize("values", [{"tickInterval": "fast"}, {"watchNamespaces": "serving"}, {"replicas": 0},
                                    {"scrapeInterval": "5 seconds"}])
def test_lint_rejects_values_the_schema_rejects(chart_with, helm_errors, values):
    assert any(m["Path"] == "values.yaml" for m in helm_errors(chart_with(**values)))


def test_defaults_render_no_prometheus_auth_tls_or_secret_volumes(render_deployment):
    pod = render_deployment()["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert set(env) == {"PROMETHEUS_URL", "INFERENCEFLEET_TICK_INTERVAL", "INFERENCEFLEET_SIGNALS_WINDOW",
                        "INFERENCEFLEET_SCRAPE_INTERVAL", "INFERENCEFLEET_PROMETHEUS_TIMEOUT"}
    assert [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]] == ["/tmp"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    settings = OperatorSettings.from_env(env)
    assert settings.prometheus_timeout == 5.0 and settings.prometheus_username is None


def test_the_scrape_interval_reaches_the_podmonitors_the_operator_renders(render_deployment):
    pod = render_deployment(scrapeInterval="15s")["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert OperatorSettings.from_env(env).render_options().scrape_interval == "15s"


def test_basic_auth_and_ca_are_mounted_files_and_the_operator_reads_them(render_deployment):
    pod = render_deployment(
        prometheusBasicAuthSecret={"name": "prom-auth", "usernameKey": "user", "passwordKey": "pass"},
        prometheusCaConfigMap={"name": "prom-ca", "key": "ca.pem"}, prometheusInsecureSkipTlsVerify=True,
        prometheusTimeout="800ms",
    )["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert set(env) <= set(ENV.values())
    assert env["PROMETHEUS_USERNAME"]["valueFrom"] == {"secretKeyRef": {"name": "prom-auth", "key": "user"}}
    assert mounted(pod, env["PROMETHEUS_PASSWORD_FILE"]["value"]) == ("secret", "prom-auth", "pass")
    assert mounted(pod, env["PROMETHEUS_CA_FILE"]["value"]) == ("configMap", "prom-ca", "ca.pem")
    assert "PROMETHEUS_BEARER_TOKEN_FILE" not in env
    plain = {name: e["value"] for name, e in env.items() if "value" in e}
    settings = OperatorSettings.from_env({**plain, "PROMETHEUS_USERNAME": "someone"})
    assert settings.prometheus_insecure_skip_tls_verify is True and settings.prometheus_timeout == 0.8


def test_bearer_token_is_a_mounted_file(render_deployment):
    pod = render_deployment(prometheusBearerTokenSecret={"name": "prom-token"})["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert mounted(pod, env["PROMETHEUS_BEARER_TOKEN_FILE"]) == ("secret", "prom-token", "token")
    assert {"PROMETHEUS_USERNAME", "PROMETHEUS_PASSWORD_FILE", "PROMETHEUS_CA_FILE"}.isdisjoint(env)
