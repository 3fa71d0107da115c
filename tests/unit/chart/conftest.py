"""Helm v4's own Go code (through the helm-sdkpy wheel) lints and renders the chart."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[3] / "charts" / "inferencefleet"
ERROR = 3  # helm's support.ErrorSev
FAILED = re.compile(r'fail message=("(?:[^"\\]|\\.)*")')
"""How lint logs a template's `fail` message (Go-quoted)."""
RENDER = """\
{{- $out := list }}
{{- range $path, $_ := .Files.Glob "render/*" }}{{ $out = append $out (tpl ($.Files.Get $path) $) }}{{ end }}
{{- fail (join "\\n---\\n" $out) }}
"""
"""A template that fails with every template of render/ rendered (helm-sdkpy has no `helm template`)."""


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


def merged(defaults: Any, overrides: Any) -> Any:
    """``overrides`` over ``defaults``, maps merged key by key as Helm merges values."""
    if isinstance(defaults, dict) and isinstance(overrides, dict):
        return {**defaults, **{k: merged(defaults.get(k), v) for k, v in overrides.items()}}
    return overrides


@pytest.fixture
def helm_errors() -> Callable[[Path], list[dict[str, Any]]]:
    """The error messages of `helm lint` for a chart directory."""
    return errors


@pytest.fixture
def chart_with(tmp_path: Path) -> Callable[..., Path]:
    """A copy of the chart whose values.yaml has the given values over the defaults."""

    def copy(**values: Any) -> Path:
        chart = tmp_path / "inferencefleet"
        shutil.rmtree(chart, ignore_errors=True)
        shutil.copytree(CHART, chart)
        defaults = yaml.safe_load((chart / "values.yaml").read_text())
        (chart / "values.yaml").write_text(yaml.safe_dump(merged(defaults, values)))
        return chart

    return copy


@pytest.fixture
def render_text(chart_with: Callable[..., Path], capfd: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """The text Helm renders from the chart's templates matching ``pattern`` with the given values.

    lint renders every template and logs (not reports) a `fail`: a template failing with the others
    rendered through `tpl` hands their text back.
    """

    def render(pattern: str = "*.yaml", **values: Any) -> str:
        chart = chart_with(**values)
        (chart / "render").mkdir()
        for template in sorted((chart / "templates").glob(pattern)):
            shutil.move(template, chart / "render" / template.name)
        (chart / "templates" / "render.yaml").write_text(RENDER)
        capfd.readouterr()
        assert errors(chart) == []
        logged = FAILED.search(capfd.readouterr().err)
        assert logged, "helm lint logged no rendering"
        return str(json.loads(logged[1]))

    return render


@pytest.fixture
def render(render_text: Callable[..., str]) -> Callable[..., list[dict[str, Any]]]:
    """Every object the chart renders with the given values."""

    def objects(**values: Any) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(render_text("*.yaml", **values)) if d]

    return objects
