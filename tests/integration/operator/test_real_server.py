"""What only a real API server checks: schema and CEL admission, printer columns, the /scale subresource,
server-side apply ownership, RBAC and owner-reference permission enforcement, all through real kubectl."""

from __future__ import annotations

import json
import re
import ssl
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client

from .conftest import (
    EXAMPLES,
    RELEASE_NAMESPACE,
    ROOT,
    ControlPlane,
    condition,
    create,
    deployment,
    events_of,
    example,
    get_pool,
    localcluster,
    pool,
    running_operator,
    wait_for,
)

INVALID = sorted((ROOT / "policies/invalid").glob("*.yaml"))


def _in_namespace(path: Path, namespace: str) -> str:
    """The file's text with its InferencePools moved to ``namespace``, byte for byte otherwise (a duplicate key
    must reach the server as written)."""
    return re.sub(r"\bnamespace: serving\b", f"namespace: {namespace}", path.read_text())


def test_crds_and_every_example_are_admitted_with_server_side_validation(
        control_plane: ControlPlane, namespace: str) -> None:
    control_plane.kubectl("apply", "--server-side", "--validate=strict", "-f", str(ROOT / "crds"))
    for path in sorted(EXAMPLES.glob("*.yaml")):
        done = control_plane.kubectl("apply", "--server-side", "--validate=strict", "-f", "-",
                                     input=_in_namespace(path, namespace), check=False)
        assert done.returncode == 0, f"{path.name} refused by the API server: {done.stderr}"
    names = control_plane.kubectl("get", "ipool", "-n", namespace, "-o", "name").stdout.split()
    assert len(names) == len(list(EXAMPLES.glob("*.yaml"))) - 1  # every example but the FleetQuota


def _expectation(path: Path) -> str:
    match = re.search(r"^# expect: (.*)$", path.read_text(errors="replace"), re.MULTILINE)
    assert match, f"{path.name} has no '# expect:' line"
    return match[1]


def _post_yaml(plane: ControlPlane, text: str, namespace: str) -> httpx.Response:
    """POST the YAML as written (Content-Type application/yaml, fieldValidation=Strict): kubectl would turn it
    into JSON first, and its YAML reader keeps the last of two duplicate keys without a word."""
    pki = plane.cluster.dir / "pki"
    url = f"{plane.cluster.server}/apis/inferencefleet.io/v1alpha1/namespaces/{namespace}/inferencepools"
    tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    tls.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return httpx.post(url, params={"fieldValidation": "Strict"}, content=text.encode(),
                      headers={"Content-Type": "application/yaml"}, verify=tls)


def test_a_duplicate_key_is_refused_by_the_api_server_when_it_receives_the_yaml(
        control_plane: ControlPlane, namespace: str) -> None:
    refused = _post_yaml(control_plane, _in_namespace(ROOT / "policies/invalid/duplicate-key.yaml", namespace),
                         namespace)
    assert refused.status_code == 400 and 'key "tier" already set' in refused.json()["message"], refused.text


@pytest.mark.parametrize("path", [p for p in INVALID if p.name != "duplicate-key.yaml"], ids=lambda p: p.name)
def test_every_invalid_example_is_refused_by_the_api_server_itself(
        control_plane: ControlPlane, namespace: str, path: Path) -> None:
    done = control_plane.kubectl("apply", "--server-side", "--validate=strict", "-f", "-",
                                 input=_in_namespace(path, namespace), check=False)
    assert done.returncode != 0, f"the API server admitted {path.name}: {done.stdout}"
    expected = _expectation(path)
    field = expected.split(":", 1)[0]
    if field.startswith("spec."):
        # The server names the field (or, for a CEL rule on an object, the object that holds it).
        parent = field.rsplit(".", 1)[0]
        assert field in done.stderr or parent in done.stderr, f"{path.name}: {done.stderr}"


def test_printer_columns(control_plane: ControlPlane, namespace: str) -> None:
    create(control_plane.api(), example("quota.yaml"))
    create(control_plane.api(), pool("llama", namespace))
    header = control_plane.kubectl("get", "ipool", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "MODEL", "ENGINE", "TIER", "READY", "DESIRED", "TTFT-P99", "ITL-P99", "$/H", "AGE"]
    row = control_plane.kubectl("get", "ipool", "llama", "-n", namespace, "--no-headers").stdout.split()
    assert row[:4] == ["llama", "meta-llama/Llama-3.1-8B-Instruct", "vllm", "free"]
    fquota = control_plane.kubectl("get", "fquota").stdout.splitlines()
    assert fquota[0].split()[0] == "NAME" and fquota[1].split()[0] == "default"
    assert control_plane.kubectl("get", "inferencepools.inferencefleet.io", "-n", namespace, "-o", "name").stdout \
        .strip() == "inferencepool.inferencefleet.io/llama"


def test_kubectl_scale_in_external_mode_reaches_the_workload(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    external = pool("ext", namespace, mode="External", replicas={"min": 1, "max": 4, "count": 1})
    with running_operator(control_plane, tmp_path):
        create(api, example("quota.yaml"))
        create(api, external)
        wait_for(lambda: (d := deployment(api, namespace, "ext")) is not None and d.spec.replicas == 1, "1 replica")
        control_plane.kubectl("scale", "ipool", "ext", "-n", namespace, "--replicas=3")
        wait_for(lambda: deployment(api, namespace, "ext").spec.replicas == 3, "the Deployment to follow /scale")
        wait_for(lambda: get_pool(api, namespace, "ext")["status"].get("readyReplicas") == 3, "3 ready pods")
        scale = json.loads(control_plane.kubectl(
            "get", "--raw", f"/apis/inferencefleet.io/v1alpha1/namespaces/{namespace}/inferencepools/ext/scale").stdout)
        assert scale["spec"]["replicas"] == 3 and scale["status"]["replicas"] == 3
        assert "inferencefleet.io/pool=ext" in scale["status"]["selector"]
        events = wait_for(lambda: events_of(api, namespace, "ext", "ScaledToCount"), "a ScaledToCount Event")
        assert any("-> 3" in e.message for e in events)


def test_another_field_manager_conflicts_with_the_operators_fields(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    with running_operator(control_plane, tmp_path):
        create(api, example("quota.yaml"))
        create(api, pool("owned", namespace))
        made = wait_for(lambda: deployment(api, namespace, "owned"), "the Deployment")
    change = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "owned", "namespace": namespace},
              "spec": {"replicas": 5, "selector": made.spec.selector.to_dict() | {},
                       "template": {"metadata": {"labels": made.spec.template.metadata.labels},
                                    "spec": {"containers": [{"name": made.spec.template.spec.containers[0].name,
                                                             "image": "example/other:1"}]}}}}
    change["spec"]["selector"] = {"matchLabels": made.spec.selector.match_labels}
    done = control_plane.kubectl("apply", "--server-side", "--field-manager=gitops", "-f", "-",
                                 input=yaml.safe_dump(change), check=False)
    assert done.returncode != 0
    assert 'conflicts with "inferencefleet"' in done.stderr and "- .spec.replicas" in done.stderr, done.stderr
    assert deployment(api, namespace, "owned").spec.replicas == 1


def test_the_operator_without_a_chart_rule_fails_loudly_and_block_owner_deletion_is_enforced(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    """Drop the chart's inferencepools/finalizers rule: the API server's OwnerReferencesPermissionEnforcement
    then refuses the blockOwnerDeletion owner reference, and the operator must say so on the pool."""
    roles = json.loads(control_plane.kubectl("get", "clusterrole", "-l", "app.kubernetes.io/name=inferencefleet",
                                             "-o", "json").stdout)["items"]
    role = next(r for r in roles if any("inferencepools/status" in rule.get("resources", []) for rule in r["rules"]))
    rules = [rule for rule in role["rules"] if "inferencepools/finalizers" not in rule.get("resources", [])]
    assert len(rules) == len(role["rules"]) - 1, "the chart grants inferencepools/finalizers in a rule of its own"
    restricted = f"restricted-{namespace}"
    lease_role = json.loads(control_plane.kubectl("get", "role", "-n", RELEASE_NAMESPACE, "-l",
                                                  "app.kubernetes.io/name=inferencefleet", "-o", "json").stdout)
    lease_role = next(r["metadata"]["name"] for r in lease_role["items"]
                      if any("leases" in rule.get("resources", []) for rule in r["rules"]))
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": restricted, "namespace": RELEASE_NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": restricted},
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": restricted},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": restricted},
         "subjects": [{"kind": "ServiceAccount", "name": restricted, "namespace": RELEASE_NAMESPACE}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": restricted, "namespace": RELEASE_NAMESPACE},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": lease_role},
         "subjects": [{"kind": "ServiceAccount", "name": restricted, "namespace": RELEASE_NAMESPACE}]},
    ]))
    token = control_plane.kubectl("create", "token", restricted, "-n", RELEASE_NAMESPACE).stdout.strip()
    kubeconfig = tmp_path / "restricted.kubeconfig"
    kubeconfig.write_text(localcluster.kubeconfig(control_plane.cluster.server, control_plane.cluster.ca,
                                                  {"token": token}))
    api = control_plane.api()
    try:
        with running_operator(control_plane, tmp_path, kubeconfig=kubeconfig, check_clean=False) as operator:
            create(api, example("quota.yaml"))
            create(api, pool("denied", namespace))
            warning = wait_for(lambda: [e for e in events_of(api, namespace, "denied") if e.type == "Warning"
                                        and "blockOwnerDeletion" in e.message], "a Warning Event naming the refusal")
            assert "finalizers" in warning[0].message
            assert deployment(api, namespace, "denied") is None
        assert "blockOwnerDeletion" in operator.output
    finally:
        control_plane.kubectl("delete", "clusterrolebinding,clusterrole", restricted, check=False)
        control_plane.kubectl("delete", "rolebinding", restricted, "-n", RELEASE_NAMESPACE, check=False)
    assert client.CoreV1Api(api).list_namespaced_pod(namespace).items == []


def test_an_operator_that_may_not_read_its_lease_says_so_and_exits(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    account = f"no-lease-{namespace}"
    control_plane.kubectl("create", "serviceaccount", account, "-n", RELEASE_NAMESPACE)
    token = control_plane.kubectl("create", "token", account, "-n", RELEASE_NAMESPACE).stdout.strip()
    kubeconfig = tmp_path / "no-lease.kubeconfig"
    kubeconfig.write_text(localcluster.kubeconfig(control_plane.cluster.server, control_plane.cluster.ca,
                                                  {"token": token}))
    with running_operator(control_plane, tmp_path, kubeconfig=kubeconfig, check_clean=False) as operator:
        assert operator.process.wait(30) == 2
    lines = operator.output.strip().splitlines()
    assert lines[-1].startswith("inferencefleet run: error: leader election: cannot read the Lease"), lines[-3:]
    assert "HTTP 403" in lines[-1] and "Traceback" not in operator.output


def test_a_pool_never_takes_over_an_object_it_did_not_create(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    core = client.CoreV1Api(api)
    core.create_namespaced_service(namespace, {
        "metadata": {"name": "taken"},
        "spec": {"selector": {"app": "theirs"}, "ports": [{"name": "web", "port": 80}]}})
    with running_operator(control_plane, tmp_path):
        create(api, example("quota.yaml"))
        create(api, pool("taken", namespace))
        conflict = wait_for(lambda: (c := condition(get_pool(api, namespace, "taken"), "SpecValid")) is not None
                            and c["reason"] == "Conflict" and c, "SpecValid=False with reason Conflict")
        assert "Service" in conflict["message"] and "not this pool's" in conflict["message"]
        wait_for(lambda: events_of(api, namespace, "taken", "Conflict"), "a Conflict Event")
    service = core.read_namespaced_service("taken", namespace)
    assert service.spec.selector == {"app": "theirs"} and [p.port for p in service.spec.ports] == [80]
    assert not service.metadata.owner_references
    assert deployment(api, namespace, "taken") is None
