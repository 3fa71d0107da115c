"""Shared pydantic configuration for every API object: camelCase on the wire, unknown fields refused."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

INT64 = (-(2**63), 2**63 - 1)
"""Integers the API server can decode (JSON numbers outside int64 are refused before any schema check)."""


class ApiModel(BaseModel):
    """Base of all API models: camelCase aliases, strict about unknown fields, frozen values."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        validate_default=False,
        allow_inf_nan=False,
    )

    @model_validator(mode="after")
    def _int64(self) -> Self:
        """Every integer fits in 64 bits, as the API server's JSON decoder requires."""
        low, high = INT64
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if type(value) is int and not low <= value <= high:
                raise ValueError(f"{field.alias or name}: must be a 64-bit integer ({low} .. {high}), got {value}")
        return self

    def to_wire(self) -> dict[str, Any]:
        """The object as it appears in YAML / the API server (camelCase, unset optionals omitted)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One ``x-kubernetes-validations`` entry (a CEL rule the API server evaluates)."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def with_rules(*rules: JsonDict) -> ConfigDict:
    """The ApiModel configuration plus CEL rules that crdgen copies into the CRD schema."""
    return ConfigDict(**ApiModel.model_config, json_schema_extra={"x-kubernetes-validations": list(rules)})
