"""Check an object against a CRD's openAPIV3Schema the way the API server does, offline.

Order as in the API server: prune nulls, apply the schema's defaults, validate the structure (jsonschema
Draft 2020-12 with RE2 patterns, and unknown fields refused as ``kubectl --validate=strict``
does), then evaluate the CEL ``x-kubernetes-validations`` rules with cel-python on every node
whose subtree is structurally valid.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import celpy
import re2
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError
from jsonschema import Draft202012Validator, ValidationError, validators

from .base import INT64
from .defaulting import apply_defaults, child_schema, field_path, without_nulls

Schema = dict[str, Any]
Path = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Finding:
    """One schema or CEL violation: where (``spec.tiers[0].name``) and what."""

    path: str
    message: str



def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: Schema) -> Iterator[ValidationError]:
    """``pattern`` with RE2 semantics (Go's regexp, as the API server): ``$`` is the end of the text."""
    if isinstance(instance, str) and not re2.search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _strict_int(checker: Any, instance: Any) -> bool:
    """``integer`` means a JSON integer the API server decodes: no booleans, no 1.0, nothing outside int64."""
    return isinstance(instance, int) and not isinstance(instance, bool) and INT64[0] <= instance <= INT64[1]


def _finite_number(checker: Any, instance: Any) -> bool:
    """``number`` means a JSON number a float64 holds: no NaN or Infinity (YAML's .nan and .inf)."""
    number = isinstance(instance, int | float) and not isinstance(instance, bool)
    return number and abs(instance) <= sys.float_info.max


_Validator = validators.extend(
    Draft202012Validator,
    validators={"pattern": _re2_pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": _strict_int, "number": _finite_number}
    ),
)


def _draft2020(node: Any) -> Any:
    """OpenAPI v3.0 spelling -> Draft 2020-12, with unknown fields refused."""
    if isinstance(node, list):
        return [_draft2020(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _draft2020(v) for k, v in node.items() if k not in ("default", "enum", "properties")}
    if "enum" in node:
        out["enum"] = node["enum"]
    if "properties" in node:
        out["properties"] = {name: _draft2020(sub) for name, sub in node["properties"].items()}
        out.setdefault("additionalProperties", False)
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if node.get(exclusive) is True:
            out[exclusive] = out.pop(bound)
    return out


def to_cel(value: Any, schema: Schema) -> Any:
    """A CEL value typed by the schema (``number`` is always a double, as in the API server)."""
    kind = schema.get("type")
    if isinstance(value, dict):
        return celtypes.MapType(
            {celtypes.StringType(k): to_cel(v, child_schema(schema, k) or {}) for k, v in value.items()}
        )
    if isinstance(value, list):
        items = schema.get("items")
        return celtypes.ListType([to_cel(v, items if isinstance(items, dict) else {}) for v in value])
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return celtypes.DoubleType(value)
    return json_to_cel(value)


@lru_cache(maxsize=256)
def _program(rule: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


class SchemaChecker:
    """Validates objects against one CRD's openAPIV3Schema (structure, then CEL rules)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        draft = _draft2020(schema)
        draft.get("properties", {}).get("metadata", {}).pop("additionalProperties", None)  # ObjectMeta: the API server's
        self._validator = _Validator(draft)

    def check(self, obj: Any) -> list[Finding]:
        """Every problem with ``obj``, sorted by path; empty when the API server would accept it."""
        defaulted = apply_defaults(self.schema, without_nulls(obj))
        errors = list(self._validator.iter_errors(defaulted))
        structural = [finding for error in errors for finding in _findings(error)]
        broken = [tuple(error.absolute_path) for error in errors]
        rules = list(self._rule_findings(self.schema, defaulted, (), broken))
        return sorted(set(structural + rules))

    def _rule_findings(self, schema: Schema, value: Any, path: Path, broken: list[Path]) -> Iterator[Finding]:
        rules = schema.get("x-kubernetes-validations", [])
        if rules and not any(b[: len(path)] == path for b in broken):
            subject = to_cel(value, schema)
            for rule in rules:
                yield from _evaluate(rule, subject, path)
        children: list[tuple[str | int, Any]] = []
        if isinstance(value, dict):
            children = list(value.items())
        elif isinstance(value, list):
            children = list(enumerate(value))
        for key, item in children:
            sub = child_schema(schema, key)
            if sub is not None:
                yield from self._rule_findings(sub, item, (*path, key), broken)


def _evaluate(rule: dict[str, str], subject: Any, path: Path) -> Iterator[Finding]:
    target = (*path, *[p for p in rule.get("fieldPath", "").split(".") if p])
    try:
        result = _program(rule["rule"]).evaluate({"self": subject})
    except CELEvalError as error:
        yield Finding(field_path(target), f"rule {rule['rule']!r} could not be evaluated: {error.args[0]}")
        return
    if isinstance(result, CELEvalError):
        yield Finding(field_path(target), f"rule {rule['rule']!r} could not be evaluated: {result.args[0]}")
    elif not bool(result):
        yield Finding(field_path(target), rule.get("message") or f"failed rule: {rule['rule']}")


def _findings(error: ValidationError) -> list[Finding]:
    """One jsonschema error as findings, worded like the API server's field errors."""
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = error.schema.get("properties", {})
        return [Finding(field_path((*path, k)), "unknown field") for k in error.instance if k not in allowed]
    if error.validator == "required":
        missing = [r for r in error.validator_value if r not in error.instance]
        return [Finding(field_path((*path, name)), "required field is missing") for name in missing]
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        return [Finding(field_path(path), f"must be one of {allowed}, got {error.instance!r}")]
    return [Finding(field_path(path), error.message)]
