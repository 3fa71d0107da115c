"""Fixtures for the API tests: valid base objects and the two verdicts (models, CRD schema)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferencefleet.api.crdgen import openapi_schema
from inferencefleet.api.schema_check import Finding, SchemaChecker
from inferencefleet.api.v1alpha1 import FleetQuota, InferencePool
from inferencefleet.manifests import Document, Problem, parse

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "policies" / "examples"
INVALID = REPO / "policies" / "invalid"

CHECKERS = {
    "InferencePool": SchemaChecker(openapi_schema(InferencePool)),
    "FleetQuota": SchemaChecker(openapi_schema(FleetQuota)),
}


def model_problems(body: dict[str, Any]) -> list[Problem]:
    """What the pydantic models say about ``body``."""
    return parse(Document("test.yaml", 0, body))[1]


def schema_problems(body: dict[str, Any]) -> list[Finding]:
    """What the generated CRD schema (structure + CEL) says about ``body``."""
    return CHECKERS[body["kind"]].check(body)


def set_path(body: dict[str, Any], path: str, value: Any, delete: bool = False) -> dict[str, Any]:
    """A copy of ``body`` with dotted ``path`` set to ``value`` (or removed); missing or non-map parents become maps."""
    body = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    node = body
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if delete:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return body


@pytest.fixture
def mutate() -> Callable[..., dict[str, Any]]:
    return set_path


@pytest.fixture
def base_pool() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "llama3-70b-premium.yaml").read_text())


@pytest.fixture
def base_quota() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "quota.yaml").read_text())


@pytest.fixture
def verdicts() -> Callable[[dict[str, Any]], tuple[bool, bool, str]]:
    """(models accept, CRD schema accepts, explanation) for one object."""

    def judge(body: dict[str, Any]) -> tuple[bool, bool, str]:
        models, schema = model_problems(body), schema_problems(body)
        why = f"models: {[str(p) for p in models]}; schema: {schema}"
        return not models, not schema, why

    return judge
