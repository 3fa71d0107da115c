"""Prepare an object as the API server does before validating it: prune nulls, then apply defaults."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

Schema = dict[str, Any]


def field_path(parts: Iterable[int | str]) -> str:
    """``('spec', 'tiers', 0, 'name')`` -> ``spec.tiers[0].name``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


def without_nulls(value: Any) -> Any:
    """``value`` with null map entries dropped, as the API server prunes nulls of non-nullable fields."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def apply_defaults(schema: Schema, value: Any) -> Any:
    """A copy of ``value`` with the schema's defaults filled in at every level (as the API server does)."""
    value = copy.deepcopy(value)
    _default_in_place(schema, value)
    return value


def _default_in_place(schema: Schema, value: Any) -> None:
    if isinstance(value, dict):
        properties: dict[str, Schema] = schema.get("properties", {})
        for name, sub in properties.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
        for name, item in value.items():
            child = child_schema(schema, name)
            if child is not None:
                _default_in_place(child, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default_in_place(schema["items"], item)


def child_schema(schema: Schema, key: str | int) -> Schema | None:
    """The schema of ``key`` (a property, a map value or a list index) under ``schema``, if declared."""
    if isinstance(key, int):
        items = schema.get("items")
        return items if isinstance(items, dict) else None
    sub = schema.get("properties", {}).get(key)
    if sub is None and isinstance(schema.get("additionalProperties"), dict):
        sub = schema["additionalProperties"]
    return sub if isinstance(sub, dict) else None
