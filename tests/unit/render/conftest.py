"""Shared fixtures for the renderer tests: pool builders, the kubelet's $(VAR) expansion, schemas."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferencefleet.api.v1alpha1 import InferencePool

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "policies" / "examples"
SCHEMAS = Path(__file__).parent / "schemas"

BASE: dict[str, Any] = {
    "apiVersion": "inferencefleet.io/v1alpha1",
    "kind": "InferencePool",
    "metadata": {"name": "pool", "namespace": "serving"},
    "spec": {"model": {"name": "org/model"}, "tier": "free"},
}


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture
def make_pool() -> Callable[..., InferencePool]:
    """make_pool(spec={...}, metadata={...}): a validated InferencePool built on a small base."""

    def build(spec: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> InferencePool:
        body = _merge(BASE, {"spec": spec or {}, "metadata": metadata or {}})
        return InferencePool.model_validate(body)

    return build


def example_paths() -> list[Path]:
    """Every example file that holds an InferencePool."""
    return sorted(p for p in EXAMPLES.glob("*.yaml") if "kind: InferencePool" in p.read_text())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking ``example`` runs once per example pool file."""
    if "example" in metafunc.fixturenames:
        metafunc.parametrize("example", example_paths(), ids=lambda p: p.stem)


@pytest.fixture(scope="session")
def examples() -> list[Path]:
    """Every example pool file."""
    return example_paths()


@pytest.fixture(scope="session")
def quota_file() -> Path:
    """The example FleetQuota."""
    return EXAMPLES / "quota.yaml"


@pytest.fixture(scope="session")
def expand() -> Callable[[str, dict[str, str]], str]:
    """The kubelet's $(VAR) expansion of command/args."""
    return kubelet_expand


def kubelet_expand(text: str, env: dict[str, str]) -> str:
    """What the kubelet does to command/args: $(VAR) -> value when VAR is defined, $$ -> $."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(env.get(name, text[i : end + 1]))
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


def strict(schema: Any) -> Any:
    """The schema with additionalProperties: false on every object that lists properties."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@pytest.fixture(scope="session")
def crd_schemas() -> dict[str, Any]:
    """Strict vendored schemas keyed by 'apiVersion/kind'."""
    files = {
        "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet": "leaderworkerset.x-k8s.io_leaderworkersets.v1.yaml",
        "monitoring.coreos.com/v1/PodMonitor": "monitoring.coreos.com_podmonitors.v1.yaml",
    }
    return {key: strict(yaml.safe_load((SCHEMAS / name).read_text())) for key, name in files.items()}
