"""``inferencefleet simulate``: writes the report files and prints one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inferencefleet.cli import main

REPO = Path(__file__).resolve().parents[3]
POOL = str(REPO / "policies" / "examples" / "llama3-8b-free.yaml")
QUOTA = str(REPO / "policies" / "examples" / "quota.yaml")


def test_simulate_writes_summary_plots_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["simulate", "-f", POOL, "--quota", QUOTA, "--scale", "4", "--duration", "120",
                 "--policy", "inferencefleet", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    (entry,) = summary["policies"]
    assert entry["policy"] == "inferencefleet" and entry["requests"] > 1000
    assert entry["dollars"] == pytest.approx(entry["gpu_hours"] * 3.0, abs=1e-5)  # H100 at $3/h (example quota)
    assert 0 <= entry["slo_attainment"] <= 1
    for name in ("report.html", "demand_vs_replicas.png", "latency_vs_slo.png", "dollars.png", "gpus_per_tier.png"):
        assert (out / name).stat().st_size > 0
    assert "<table>" in (out / "report.html").read_text()
    assert "inferencefleet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (["--trace", "/nonexistent.csv"], "/nonexistent.csv: trace file not found", 2),
        (["--scale", "0"], "--scale: must be > 0", 1),
        (["--duration", "-5"], "--duration: must be > 0 seconds", 1),
        (["--tick", "0"], "--tick: must be > 0 seconds", 1),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                               message: str, status: int) -> None:
    code = main(["simulate", "-f", POOL, "--policy", "static", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == status and message in err and err.count("\n") == 1
