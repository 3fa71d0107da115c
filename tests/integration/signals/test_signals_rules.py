"""Recording rules: committed files match the generator, and promtool checks and unit-tests them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from inferencefleet.signals import rules
from inferencefleet.signals.testing import binary

RULES = Path(__file__).resolve().parents[3] / "policies" / "rules"
REGENERATE = "run: python -m inferencefleet.signals.rules policies/rules"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary("promtool"), *args], capture_output=True, text=True, check=False)


def test_committed_rule_files_match_the_generator() -> None:
    assert (RULES / rules.RULES_FILE).read_text() == rules.rules_file(), REGENERATE
    assert (RULES / rules.MANIFEST_FILE).read_text() == rules.manifest(), REGENERATE


def test_promtool_check_rules() -> None:
    done = promtool("check", "rules", str(RULES / rules.RULES_FILE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules.RECORDED)} rules found" in done.stdout


def test_promtool_test_rules() -> None:
    tests = sorted((RULES / "tests").glob("*.test.yaml"))
    assert tests
    done = promtool("test", "rules", *map(str, tests))
    assert done.returncode == 0, done.stdout + done.stderr
