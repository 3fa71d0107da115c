"""values.schema.json accepts the chart's values.yaml, documents every value as values.yaml does, and rejects bad values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

CHART = Path(__file__).resolve().parents[3] / "charts" / "inferencefleet"
VALUES = (CHART / "values.yaml").read_text()
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][\w-]*):")


def documented(text: str) -> dict[str, str | None]:
    """Dotted path of every block-style key in ``text`` -> its ``# --`` comment (joined lines), None if it has none."""
    docs: dict[str, str | None] = {}
    parents: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            comment.append(line.strip().lstrip("#").strip())
            continue
        match = KEY.match(line)
        if match:
            indent = len(match["indent"])
            parents = [(i, k) for i, k in parents if i < indent] + [(indent, match["key"])]
            is_doc = bool(comment) and comment[0].startswith("-- ")
            docs[".".join(k for _, k in parents)] = " ".join(comment).removeprefix("-- ") if is_doc else None
        comment = []
    return docs


def described(schema: dict[str, Any], prefix: str = "") -> dict[str, str | None]:
    """Dotted path of every property in ``schema`` -> its description."""
    found: dict[str, str | None] = {}
    for name, sub in schema.get("properties", {}).items():
        found[prefix + name] = sub.get("description")
        found.update(described(sub, f"{prefix}{name}."))
    return found


def errors(values: dict[str, Any]) -> list[str]:
    return [e.message for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(values)]


def test_documented_reads_doc_comments():
    text = "# -- A.\n# more.\na:\n  # plain comment\n  b: 1\n\n# -- C.\n\nc: 2\n"
    assert documented(text) == {"a": "A. more.", "a.b": None, "c": None}


def test_schema_is_draft7_and_accepts_the_defaults():
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False
    assert errors(yaml.safe_load(VALUES)) == []


def test_every_value_is_documented_and_the_schema_says_the_same():
    docs = documented(VALUES)
    assert [path for path, doc in docs.items() if not doc] == [], "values.yaml keys without a '# --' comment"
    assert described(SCHEMA) == docs


@pytest.mark.parametrize("override, message", [
    ({"tickInterval": "fast"}, "'fast' is not of type 'number'"),
    ({"prometheusUrl": "prometheus:9090"}, "does not match"),
    ({"prometheusTimeout": "5"}, "does not match"),
    ({"prometheusInsecureSkipTlsVerify": "yes"}, "'yes' is not of type 'boolean'"),
    ({"prometheusBasicAuthSecret": {"name": "auth", "usernameKey": "u", "passwordKey": "p", "extra": 1}},
     "Additional properties are not allowed ('extra' was unexpected)"),
    ({"prometheus": {"url": "http://p:9090"}}, "Additional properties are not allowed ('prometheus' was unexpected)"),
    ({"replicas": 0}, "0 is less than the minimum of 1"),
    ({"watchNamespaces": "serving"}, "'serving' is not of type 'array'"),
    ({"watchNamespaces": ["Serving"]}, "does not match"),
    ({"metrics": {"port": 80, "serviceMonitor": {"enabled": False, "interval": "30s", "labels": {}}}},
     "80 is less than the minimum of 1024"),
    ({"imagePullSecrets": ["regcred"]}, "'regcred' is not of type 'object'"),
    ({"affinity": {"nodeAfinity": {}}}, "'nodeAfinity' is not one of"),
    ({"namespace": "serving"}, "Additional properties are not allowed ('namespace' was unexpected)"),
])
def test_schema_rejects_bad_values(override: dict[str, Any], message: str):
    found = errors({**yaml.safe_load(VALUES), **override})
    assert len(found) == 1 and message in found[0], found


def test_bearer_token_and_basic_auth_exclude_each_other():
    values = yaml.safe_load(VALUES)
    values["prometheusBearerTokenSecret"]["name"] = "token"
    assert errors(values) == []
    values["prometheusBasicAuthSecret"]["name"] = "auth"
    assert len(errors(values)) == 1
