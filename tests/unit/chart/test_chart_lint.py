"""The Helm chart passes `helm lint` and renders as intended (Helm v4's own Go code, through the helm-sdkpy wheel)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferencefleet.settings import ENV, OperatorSettings

CHART = Path(__file__).resolve().parents[3] / "charts" / "inferencefleet"
ERROR = 3  # helm's support.ErrorSev
FAILED = re.compile(r'fail message=("(?:[^"\\]|\\.)*")')
"""How lint logs a template's `fail` message (Go-quoted)."""


def lint(chart: Path) -> list[dict[str, Any]]:
    """Messages of `helm lint` for ``chart``."""
    try:
        import helm_sdkpy
    except ImportError:
        pytest.fail("helm-sdkpy is missing: make test installs it "
                    "(pip install --ignore-requires-python helm-sdkpy==0.1.32)")
    config = helm_sdkpy.Configuration(namespace="inferencefleet")
    result = asyncio.run(helm_sdkpy.Lint(config).run(str(chart)))
    return list(result.get("Messages") or [])


def errors(chart: Path) -> list[dict[str, Any]]:
    return [m for m in lint(chart) if m["Severity"] >= ERROR]


def copy_chart(tmp_path: Path, **values: Any) -> Path:
    """A copy of the chart whose values.yaml has ``values`` over the defaults (one level deep)."""
    chart = tmp_path / "inferencefleet"
    shutil.copytree(CHART, chart)
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    merged = {k: {**defaults[k], **v} if isinstance(v, dict) else v for k, v in values.items()}
    (chart / "values.yaml").write_text(yaml.safe_dump({**defaults, **merged}))
    return chart


def render_deployment(tmp_path: Path, capfd: pytest.CaptureFixture[str], **values: Any) -> dict[str, Any]:
    """The operator Deployment Helm renders with ``values``.

    helm-sdkpy has no `helm template`, but lint renders every template and logs (not reports) a
    `fail`: an extra template failing with the tpl-rendered deployment.yaml hands its text back.
    """
    chart = copy_chart(tmp_path, **values)
    (chart / "render").mkdir()
    shutil.copy(chart / "templates" / "deployment.yaml", chart / "render")
    (chart / "templates" / "render.yaml").write_text('{{ fail (tpl (.Files.Get "render/deployment.yaml") .) }}\n')
    capfd.readouterr()
    assert errors(chart) == []
    logged = FAILED.search(capfd.readouterr().err)
    assert logged, "helm lint logged no rendering"
    return dict(yaml.safe_load(json.loads(logged[1])))


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


def test_chart_lints_without_errors():
    assert errors(CHART) == [], f"helm lint errors in {CHART}"


def test_lint_catches_a_broken_template(tmp_path):
    broken = tmp_path / "inferencefleet"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "broken.yaml").write_text("{{ .Values.replicas | noSuchFunction }}\n")
    assert any(m["Path"].startswith("templates") for m in errors(broken))


def test_lint_rejects_values_the_schema_rejects(tmp_path):
    assert any(m["Path"] == "values.yaml" for m in errors(copy_chart(tmp_path, tickInterval="fast")))


def test_defaults_render_no_prometheus_auth_tls_or_volumes(tmp_path, capfd):
    pod = render_deployment(tmp_path, capfd)["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert set(env) == {"PROMETHEUS_URL", "INFERENCEFLEET_TICK_INTERVAL", "INFERENCEFLEET_SIGNALS_WINDOW",
                        "INFERENCEFLEET_PROMETHEUS_TIMEOUT"}
    assert "volumeMounts" not in pod["containers"][0] and "volumes" not in pod
    settings = OperatorSettings.from_env(env)
    assert settings.prometheus_timeout == 5.0 and settings.prometheus_username is None


def test_basic_auth_and_ca_are_mounted_files_and_the_operator_reads_them(tmp_path, capfd):
    pod = render_deployment(
        tmp_path, capfd, prometheusBasicAuthSecret={"name": "prom-auth", "usernameKey": "user", "passwordKey": "pass"},
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


def test_bearer_token_is_a_mounted_file(tmp_path, capfd):
    pod = render_deployment(tmp_path, capfd, prometheusBearerTokenSecret={"name": "prom-token"})["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert mounted(pod, env["PROMETHEUS_BEARER_TOKEN_FILE"]) == ("secret", "prom-token", "token")
    assert {"PROMETHEUS_USERNAME", "PROMETHEUS_PASSWORD_FILE", "PROMETHEUS_CA_FILE"}.isdisjoint(env)
