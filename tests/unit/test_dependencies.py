"""Declared dependencies are honest: each runtime one and each extra's is imported by the package,
each extra's modules are the ones the CLI's missing-extra check knows, and nothing only tests use
is a runtime dependency."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

from inferencefleet.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def modules_of(distribution: str) -> set[str]:
    return {module for module, dists in importlib.metadata.packages_distributions().items()
            if any(d.lower().replace("_", "-") == distribution for d in dists)}


def imported_by(root: Path) -> set[str]:
    """Top-level modules imported anywhere under ``root``."""
    found: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.partition(".")[0])
    return found


PACKAGE_IMPORTS = imported_by(ROOT / "operator" / "inferencefleet")


def test_every_runtime_dependency_is_imported_by_the_package():
    unused = [d for d in map(name, PROJECT["dependencies"])
              if not modules_of(d) & PACKAGE_IMPORTS]
    assert unused == []


def test_each_extra_is_imported_and_known_to_the_missing_extra_check():
    for extra in ("sim", "enginesim"):
        modules = set().union(*(modules_of(name(r)) for r in PROJECT["optional-dependencies"][extra]))
        assert modules & PACKAGE_IMPORTS == set(EXTRAS[extra]), extra


def test_no_runtime_dependency_serves_only_the_tests():
    test_only = modules_of("numpy") | modules_of("kubernetes-validate") | modules_of("lupa")
    declared = set().union(*(modules_of(name(r)) for r in PROJECT["dependencies"]))
    assert test_only and test_only.isdisjoint(declared)
    assert "numpy" not in PACKAGE_IMPORTS
