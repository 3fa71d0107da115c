"""Golden files: `inferencefleet render` output for every example, reviewed in diffs.

Regenerate with INFERENCEFLEET_UPDATE_GOLDEN=1 (or `make golden`).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
import yaml

from inferencefleet.cli import main

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("INFERENCEFLEET_UPDATE_GOLDEN") == "1"


def render_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["render", *argv]) == 0
    return capsys.readouterr().out


def test_example_matches_golden(example: Path, quota_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = render_cli(capsys, "-f", str(example), "--quota", str(quota_file))
    golden = GOLDEN / f"{example.stem}.yaml"
    if UPDATE:
        golden.write_text(out)
        return
    assert golden.exists(), f"no golden file {golden.name}; run INFERENCEFLEET_UPDATE_GOLDEN=1 pytest {__file__}"
    expected = golden.read_text()
    if out != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), out.splitlines(True), "golden", "rendered"))
        pytest.fail(f"{example.name} renders differently from {golden.name} "
                    f"(INFERENCEFLEET_UPDATE_GOLDEN=1 to accept):\n{diff}")


def test_golden_files_cover_every_example_and_nothing_else(examples: list[Path]) -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.yaml")) == sorted(p.stem for p in examples)


def test_render_is_deterministic(examples: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    files = [arg for p in examples for arg in ("-f", str(p))]
    first = render_cli(capsys, *files)
    assert render_cli(capsys, *files) == first
    documents = list(yaml.safe_load_all(first))
    assert len(documents) == first.count("---\n") > len(examples)
    assert all(doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"] for doc in documents)
