"""docs/gitops.md: every YAML block is valid for the tool that reads it, and the Argo CD health check
(docs/gitops/health.lua, run by Lua 5.1 as Argo CD's gopher-lua is) says what the page promises."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from inferencefleet.commands.validate import document_problems
from inferencefleet.manifests import read_documents

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "gitops.md"
HEALTH = ROOT / "docs" / "gitops" / "health.lua"
CHART = ROOT / "charts" / "inferencefleet"
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)
K8S_VERSION = kubernetes_validate.latest_version()


def yaml_documents() -> list[dict[str, Any]]:
    return [d for block in BLOCK.findall(DOC.read_text()) for d in yaml.safe_load_all(block) if d]


def chart_values(overrides: dict[str, Any]) -> dict[str, Any]:
    def merged(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            return {**base, **{k: merged(base.get(k), v) for k, v in over.items()}}
        return over

    return dict(merged(yaml.safe_load((CHART / "values.yaml").read_text()), overrides))


def values_problems(overrides: dict[str, Any]) -> list[str]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    return [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(chart_values(overrides))]


def check_application(app: dict[str, Any]) -> None:
    spec = app["spec"]
    assert app["metadata"]["name"] and spec["project"]
    assert spec["destination"]["namespace"] and ("server" in spec["destination"] or "name" in spec["destination"])
    source = spec["source"]
    assert source["repoURL"].startswith("https://") and source["targetRevision"] and ("path" in source or "chart" in source)
    if "helm" in source:
        assert values_problems(source["helm"]["valuesObject"]) == []
    for ignored in spec.get("ignoreDifferences", []):
        assert ignored["kind"] and "group" in ignored
        assert all(p.startswith("/") for p in ignored["jsonPointers"])
    options = spec.get("syncPolicy", {}).get("syncOptions", [])
    assert all(re.fullmatch(r"[A-Za-z]+=(true|false)", o) for o in options), options


def check_argocd_cm(config_map: dict[str, Any]) -> None:
    kubernetes_validate.validate(config_map, K8S_VERSION, strict=True)
    data = config_map["data"]
    for kind in ("InferencePool", "FleetQuota"):
        assert data[f"resource.customizations.health.inferencefleet.io_{kind}"] == HEALTH.read_text()
        assert data[f"resource.customizations.useOpenLibs.inferencefleet.io_{kind}"] == "true"


def check_flux(obj: dict[str, Any], sources: set[tuple[str, str]]) -> None:
    spec = obj["spec"]
    assert re.fullmatch(r"\d+[smh]", spec["interval"])
    kind = obj["kind"]
    if kind == "GitRepository":
        assert spec["url"].startswith("https://") and set(spec["ref"]) <= {"branch", "tag", "semver", "commit", "name"}
    elif kind == "HelmRelease":
        chart = spec["chart"]["spec"]
        assert (chart["sourceRef"]["kind"], chart["sourceRef"]["name"]) in sources
        assert chart["chart"] == "./charts/inferencefleet" and (ROOT / chart["chart"]).is_dir()
        assert spec["install"]["crds"] in ("Skip", "Create", "CreateReplace")
        assert spec["upgrade"]["crds"] in ("Skip", "Create", "CreateReplace")
        assert values_problems(spec["values"]) == []
    elif kind == "Kustomization":
        assert spec["path"].startswith("./") and isinstance(spec["prune"], bool)
        assert (spec["sourceRef"]["kind"], spec["sourceRef"]["name"]) in sources
    else:
        pytest.fail(f"no check for Flux kind {kind}")


def test_every_yaml_block_is_valid_for_its_tool(tmp_path):
    documents = yaml_documents()
    sources = {(d["kind"], d["metadata"]["name"]) for d in documents if d["apiVersion"].startswith("source.toolkit")}
    seen = set()
    for index, document in enumerate(documents):
        api_version, kind = document["apiVersion"], document["kind"]
        seen.add(kind)
        if api_version.startswith("inferencefleet.io/"):
            path = tmp_path / f"{index}.yaml"
            path.write_text(yaml.safe_dump(document))
            assert [str(p) for d in read_documents(str(path)) for p in document_problems(d)] == []
        elif api_version == "argoproj.io/v1alpha1" and kind == "Application":
            check_application(document)
        elif (api_version, kind, document["metadata"]["name"]) == ("v1", "ConfigMap", "argocd-cm"):
            check_argocd_cm(document)
        elif re.fullmatch(r"(source|helm|kustomize)\.toolkit\.fluxcd\.io/v\d", api_version):
            check_flux(document, sources)
        else:
            pytest.fail(f"docs/gitops.md has a {api_version} {kind} no check knows")
    assert {"Application", "ConfigMap", "HelmRelease", "GitRepository", "InferencePool"} <= seen


def test_external_mode_ignores_the_replica_count_the_autoscaler_writes():
    apps = [d for d in yaml_documents() if d["kind"] == "Application" and "ignoreDifferences" in d["spec"]]
    [ignored] = [i for app in apps for i in app["spec"]["ignoreDifferences"]]
    assert (ignored["group"], ignored["kind"], ignored["jsonPointers"]) == (
        "inferencefleet.io", "InferencePool", ["/spec/replicas/count"])
    assert "RespectIgnoreDifferences=true" in apps[0]["spec"]["syncPolicy"]["syncOptions"]


def test_shadow_first_then_managed_through_one_line():
    [pool] = [d for d in yaml_documents() if d["kind"] == "InferencePool"]
    assert pool["spec"]["autoscaling"]["mode"] == "Shadow"
    diff = re.search(r"^```diff\n(.*?)^```", DOC.read_text(), re.S | re.M)
    assert diff and "-    mode: Shadow" in diff[1] and "+    mode: Managed" in diff[1]


# The health check, run as Argo CD runs it: `obj` is the resource, the script returns {status, message}.

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)
"""The clock the script sees (os.time() without arguments), so that no result depends on when the test runs."""
FIXED_CLOCK = f"""
local real_time = os.time
os.time = function(fields)
  if fields == nil then return {int(NOW.timestamp())} end
  return real_time(fields)
end
"""


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def health(obj: dict[str, Any]) -> tuple[str, str]:
    from lupa import lua51  # Argo CD's gopher-lua is Lua 5.1

    lua = lua51.LuaRuntime()
    lua.execute(FIXED_CLOCK)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(HEALTH.read_text())
    return str(result["status"]), str(result["message"])


def condition(type_: str, status: str, since: str | None = None, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": "Test", "message": message,
            "lastTransitionTime": since or ago(seconds=5)}


def pool(conditions: list[dict[str, Any]], ready: int = 2, desired: int = 2, observed: int = 3) -> dict[str, Any]:
    return {"kind": "InferencePool", "metadata": {"name": "chat", "generation": 3},
            "status": {"observedGeneration": observed, "readyReplicas": ready, "desiredReplicas": desired,
                       "conditions": conditions}}


READY = condition("Ready", "True", message="2 of 2 replicas ready")
SPEC_VALID = condition("SpecValid", "True")


@pytest.mark.parametrize("obj, expected, words", [
    ({"kind": "InferencePool", "metadata": {"name": "new", "generation": 1}}, "Progressing", "observe"),
    (pool([SPEC_VALID, READY], observed=2), "Progressing", "generation"),
    (pool([SPEC_VALID, condition("Ready", "Unknown", message="the first fleet tick has not run yet")]),
     "Progressing", "first fleet tick"),
    (pool([SPEC_VALID, condition("Ready", "False", message="0 of 2 replicas ready")], ready=0), "Progressing", "0 of 2"),
    (pool([SPEC_VALID, READY], ready=1, desired=3), "Progressing", "1 of 3 replicas ready"),
    (pool([condition("SpecValid", "False", message="tensorParallel 3 does not divide 8 GPUs"),
           condition("Ready", "False")]), "Degraded", "tensorParallel 3"),
    (pool([SPEC_VALID, READY, condition("SLOMet", "False", ago(minutes=25), "ttft p99 1.9s > 0.8s")]),
     "Degraded", "for 25 minutes: ttft p99 1.9s"),
    (pool([SPEC_VALID, READY, condition("SLOMet", "False", ago(minutes=3))]), "Healthy", "2 of 2"),
    (pool([SPEC_VALID, READY, condition("SLOMet", "True", ago(hours=5))]), "Healthy", "2 of 2"),
], ids=["no-status", "old-generation", "first-tick", "replicas-starting", "scaling-up", "spec-invalid",
        "slo-missed-long", "slo-missed-briefly", "ready"])
def test_inference_pool_health(obj, expected, words):
    status, message = health(obj)
    assert status == expected and words in message, (status, message)


def quota(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "FleetQuota", "metadata": {"name": "default", "generation": 1},
            "status": {"observedGeneration": 1, "conditions": conditions}}


@pytest.mark.parametrize("obj, expected, words", [
    (quota([]), "Progressing", "first fleet tick"),
    (quota([condition("Ready", "False", message="spec.tiers[1].name: duplicate tier")]), "Degraded", "duplicate tier"),
    (quota([condition("Ready", "True", message="3 tiers accounted"),
            condition("OverBudget", "True", ago(minutes=40), "free: 10 GPUs > 8")]), "Degraded", "for 40 minutes"),
    (quota([condition("Ready", "True", message="3 tiers accounted"),
            condition("OverBudget", "True", ago(minutes=1))]), "Healthy", "3 tiers"),
    (quota([condition("Ready", "True", message="3 tiers accounted"), condition("OverBudget", "False")]),
     "Healthy", "3 tiers"),
], ids=["no-conditions", "invalid", "over-budget-long", "over-budget-briefly", "within-budget"])
def test_fleet_quota_health(obj, expected, words):
    status, message = health(obj)
    assert status == expected and words in message, (status, message)
