"""The Helm chart passes `helm lint` (Helm v4's own Go code, through the helm-sdkpy wheel)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

CHART = Path(__file__).resolve().parents[3] / "charts" / "inferencefleet"
ERROR = 3  # helm's support.ErrorSev


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


def test_chart_lints_without_errors():
    errors = [m for m in lint(CHART) if m["Severity"] >= ERROR]
    assert errors == [], f"helm lint errors in {CHART}: {errors}"


def test_lint_catches_a_broken_template(tmp_path):
    broken = tmp_path / "inferencefleet"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "broken.yaml").write_text("{{ .Values.replicas | noSuchFunction }}\n")
    assert any(m["Severity"] >= ERROR and m["Path"].startswith("templates") for m in lint(broken))
