"""``make e2e-kind`` (e2e/kind.sh) cannot run here (no Docker engine): it must parse, and stop at once saying what
it needs when kind or docker is missing, before it creates or builds anything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..integration.operator.conftest import ROOT

SCRIPT = ROOT / "e2e/kind.sh"


def test_the_script_parses() -> None:
    done = subprocess.run(["sh", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_without_kind_or_docker_it_says_what_to_install_and_changes_nothing(tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("sh", "dirname", "mkdir", "pwd"):  # what the script could run before its check
        os.symlink(subprocess.run(["sh", "-c", f"command -v {name}"], capture_output=True, text=True).stdout.strip()
                   or f"/bin/{name}", tools / name)
    done = subprocess.run(["sh", str(SCRIPT)], cwd=tmp_path, env={"PATH": str(tools)}, capture_output=True, text=True)
    assert done.returncode == 2
    assert "make e2e-kind needs kind (kind and a Docker engine" in done.stderr
    assert "'make e2e' runs the same suite on a real node" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"], "nothing created before the check"
