"""The generated CRDs: structural, documented, wired to the right subresources, columns and rules."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from inferencefleet.api import crdgen
from inferencefleet.api.durations import parse_duration
from inferencefleet.api.v1alpha1 import FleetQuota, InferencePool, PodSpec, SloSpec

FORBIDDEN_KEYS = {"$ref", "$defs", "anyOf", "allOf", "oneOf", "title", "nullable", "const"}


def _nodes(schema: dict[str, Any], path: str = ""):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _nodes(schema[key], f"{path}[]")


@pytest.fixture(params=crdgen.KINDS, ids=lambda k: k.name)
def kind(request) -> crdgen.Kind:
    return request.param


def test_crd_is_a_valid_apiextensions_v1_object(kind):
    assert kubernetes_validate.validate(crdgen.crd(kind), "1.37.0", strict=True) is not None


def test_schema_is_structural(kind):
    schema = crdgen.openapi_schema(kind.model)
    for path, node in _nodes(schema):
        assert not FORBIDDEN_KEYS & set(node), f"{path} has {FORBIDDEN_KEYS & set(node)}"
        assert "type" in node, f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        assert node.get("default", 0) is not None, f"{path} defaults to null"
        if node.get("exclusiveMinimum") is not None:
            assert node["exclusiveMinimum"] is True and "minimum" in node, path
    metadata = schema["properties"]["metadata"]  # the API server allows restricting metadata.name only
    assert set(metadata) == {"type", "properties"} and set(metadata["properties"]) == {"name"}


def test_every_field_is_documented_for_kubectl_explain(kind):
    undocumented = [
        path
        for path, node in _nodes(crdgen.openapi_schema(kind.model))
        if path and path != ".metadata" and not path.endswith("[]") and not node.get("description")
    ]
    assert undocumented == []


def test_names_scope_and_categories():
    pools, quotas = (crdgen.crd(crdgen.kind_for(n))["spec"] for n in ("InferencePool", "FleetQuota"))
    assert pools["scope"] == "Namespaced" and quotas["scope"] == "Cluster"
    assert pools["names"]["shortNames"] == ["ipool"] and quotas["names"]["shortNames"] == ["fquota"]
    assert pools["names"]["plural"] == "inferencepools" and quotas["names"]["plural"] == "fleetquotas"
    assert pools["names"]["categories"] == quotas["names"]["categories"] == ["inferencefleet"]
    assert pools["group"] == quotas["group"] == "inferencefleet.io"


def test_pool_subresources_and_printer_columns():
    version = crdgen.crd(crdgen.kind_for("InferencePool"))["spec"]["versions"][0]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas.count",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    default_view = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert default_view == [
        "MODEL",
        "ENGINE",
        "TIER",
        "READY",
        "DESIRED",
        "TTFT-P99",
        "ITL-P99",
        "$/H",
        "AGE",
    ]


def test_printer_columns_point_at_declared_fields(kind):
    version = crdgen.crd(kind)["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for column in version["additionalPrinterColumns"]:
        path = column["jsonPath"].split("[")[0].strip(".").split(".")
        node = schema
        for part in path:
            node = node["properties"][part] if part in node.get("properties", {}) else None
            if node is None or part == "metadata":  # ObjectMeta fields are the API server's
                break
        assert node is not None, column


def test_conditions_are_a_list_map_keyed_by_type(kind):
    status = crdgen.openapi_schema(kind.model)["properties"]["status"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]


def test_model_cel_rules_are_all_published():
    def rules(model) -> list[str]:
        text = yaml.safe_dump(crdgen.openapi_schema(model))
        return [line for line in text.splitlines() if "rule:" in line]

    assert len(rules(InferencePool)) == 20
    assert len(rules(FleetQuota)) == 4


def test_defaults_are_wire_values():
    slo = crdgen.openapi_schema(InferencePool)["properties"]["spec"]["properties"]["autoscaling"][
        "properties"
    ]["slo"]
    for name, field in slo["properties"].items():
        assert parse_duration(field["default"]) == SloSpec.model_fields[name].default
    pod = crdgen.openapi_schema(InferencePool)["properties"]["spec"]["properties"]["pod"]
    # An object's default carries its nested defaults: the API server checks it against CEL rules as written.
    assert pod["default"] == PodSpec().model_dump(mode="json", by_alias=True, exclude_none=True)
    assert pod["default"]["cache"]["kind"] == PodSpec().cache.kind
    assert pod["properties"]["tolerations"]["default"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_rendering_is_deterministic(kind):
    assert crdgen.render(kind) == crdgen.render(kind)
    assert crdgen.render(kind).startswith("# Generated by `inferencefleet crds`")
    assert yaml.safe_load(crdgen.render(kind)) == crdgen.crd(kind)
