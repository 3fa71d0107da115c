"""``inferencefleet simulate``: writes the report files and prints one-line errors for bad input."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from inferencefleet.cli import main
from inferencefleet.render.cost import DEFAULT_GPU_PRICES

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
    assert 0 <= entry["within_slo"] <= 1
    for name in ("report.html", "fleet.png", "tier-free.png", "pool-llama3-8b-free.png"):
        assert (out / name).stat().st_size > 0
    assert "<table" in (out / "report.html").read_text()
    assert "inferencefleet" in capsys.readouterr().out


def _readme_simulate_commands() -> list[list[str]]:
    """Every ``inferencefleet simulate`` command in the README's shell blocks, continuation lines joined."""
    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if len(words) > 1 and words[0].endswith("inferencefleet") and words[1] == "simulate":
                commands.append(words[1:])
    return commands


def test_the_readme_simulate_example_runs_as_written_and_shows_dollars(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    commands = _readme_simulate_commands()
    assert commands, "the README shows no inferencefleet simulate example"
    monkeypatch.chdir(REPO)
    for words in commands:
        out = tmp_path / "out"
        words = [*words[:words.index("--out") + 1], str(out), *words[words.index("--out") + 2:]]
        assert main(words) == 0
        summary = json.loads((out / "summary.json").read_text())
        entries = summary["policies"]
        assert len({e["gpu_hours"] for e in entries}) > 1, "every policy cost the same: the example shows nothing"
        assert len({e["within_slo"] for e in entries}) > 1, "every policy met the SLO alike: the example shows nothing"
        assert all(e["dollars"] > 0 for e in entries)
        printed = capsys.readouterr().out
        assert re.search(r"\$\d+\.\d\d", printed) and summary["verdict"].split(",")[0] in " ".join(printed.split())


def test_a_pool_without_a_quota_is_priced_from_the_default_table(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "-f", POOL, "--duration", "120", "--policy", "static", "--out", str(tmp_path)])
    assert code == 0
    (entry,) = json.loads((tmp_path / "summary.json").read_text())["policies"]
    assert entry["dollars"] == pytest.approx(entry["gpu_hours"] * DEFAULT_GPU_PRICES["H100-80GB"], rel=1e-4)
    assert "priced at $3 per GPU-hour (default price table)" in " ".join(capsys.readouterr().out.split())


def test_a_gpu_type_without_a_price_says_why_it_shows_no_dollars(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(Path(POOL).read_text().replace("type: H100-80GB", "type: MI300X"))
    assert main(["simulate", "-f", str(pool), "--duration", "60", "--policy", "static", "--out", str(tmp_path)]) == 0
    (entry,) = json.loads((tmp_path / "summary.json").read_text())["policies"]
    assert entry["dollars"] is None and entry["gpu_hours"] > 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "no dollars: GPU type 'MI300X' has no price: give a FleetQuota with a gpuPrices entry for it" in printed


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
