"""Every object the chart renders is valid Kubernetes, and the chart's pieces fit together: the Service
selects the operator, the ServiceMonitor the Service, RBAC grants what the operator does and no more
in namespaced mode, the PrometheusRule carries policies/rules."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from inferencefleet.signals.testing import binary

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "inferencefleet"
RULES = ROOT / "policies" / "rules"
K8S_VERSION = kubernetes_validate.latest_version()
EVERYTHING_ON = {
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
    "grafanaDashboard": {"enabled": True, "namespace": "monitoring"},
    "networkPolicy": {"enabled": True, "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
    "watchNamespaces": ["serving", "batch"],
    "imagePullSecrets": [{"name": "regcred"}],
    "podAnnotations": {"team": "platform"},
    "serviceAccount": {"annotations": {"iam.example.com/role": "operator"}},
    "nodeSelector": {"pool": "system"},
    "tolerations": [{"key": "system", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}]}}},
    "priorityClassName": "system-cluster-critical",
    "replicas": 3,
}
"""Child kinds the operator renders (render.workloads): it must be able to create, patch and delete each."""
CHILDREN = [("apps", "deployments"), ("leaderworkerset.x-k8s.io", "leaderworkersets"), ("", "services"),
            ("", "configmaps"), ("policy", "poddisruptionbudgets"), ("monitoring.coreos.com", "podmonitors")]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)


def operator_rules(objects: list[dict[str, Any]], kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    """The rules of the operator's own (Cluster)Roles of ``kind`` (not the tenants' aggregated ones)."""
    return [rule for o in by_kind(objects, kind) if "aggregate-to-view" not in str(o["metadata"].get("labels"))
            and "aggregate-to-edit" not in str(o["metadata"].get("labels"))
            and o["metadata"].get("namespace") == namespace for rule in o["rules"]]


@pytest.mark.parametrize("values", [{}, EVERYTHING_ON, {"replicas": 1}], ids=["defaults", "everything-on", "one-replica"])
def test_every_rendered_object_is_valid(render, values):
    objects = render(**values)
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # not built-in: checked by the ServiceMonitor and PrometheusRule tests below
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} <= kinds


def test_validation_catches_a_misspelled_field(render):
    [deployment] = by_kind(render(), "Deployment")
    deployment["spec"]["template"]["spec"]["nodeSelecter"] = {"pool": "system"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_operator_is_read_only_root_non_root_with_a_tmp_volume_and_the_metrics_port(render):
    [deployment] = by_kind(render(metrics={"port": 9100}), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65532
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert "command" not in container, "the image's entrypoint is `inferencefleet run`"
    assert "--metrics-port=9100" in container["args"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9100}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_scheduling_and_metadata_values_reach_the_pod(render):
    objects = render(**EVERYTHING_ON)
    [deployment] = by_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]
    for key in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets", "priorityClassName"):
        assert pod["spec"][key] == EVERYTHING_ON[key], key
    assert pod["metadata"]["annotations"] == EVERYTHING_ON["podAnnotations"]
    assert deployment["spec"]["replicas"] == 3
    [account] = by_kind(objects, "ServiceAccount")
    assert account["metadata"]["annotations"] == EVERYTHING_ON["serviceAccount"]["annotations"]


def test_default_affinity_spreads_the_replicas_over_nodes(render):
    [deployment] = by_kind(render(), "Deployment")
    assert deployment["spec"]["replicas"] == 2
    spread = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = spread["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_service_and_service_monitor_reach_the_operator_metrics_port(render):
    objects = render(**EVERYTHING_ON)
    [deployment], [service], [monitor] = (by_kind(objects, k) for k in ("Deployment", "Service", "ServiceMonitor"))
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [port] = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("metrics", 8080, "metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"] or ""]
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    assert monitor["metadata"]["labels"]["release"] == "prom"


def test_optional_objects_are_off_by_default(render):
    kinds = {o["kind"] for o in render()}
    assert {"ServiceMonitor", "PrometheusRule", "ConfigMap", "NetworkPolicy"}.isdisjoint(kinds)
    assert "PodDisruptionBudget" in kinds


def test_pod_disruption_budget_only_with_a_standby(render):
    assert by_kind(render(replicas=1), "PodDisruptionBudget") == []
    [pdb] = by_kind(render(), "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1


def test_network_policy_admits_only_the_metrics_port(render):
    [policy] = by_kind(render(**EVERYTHING_ON), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}],
                                          "from": EVERYTHING_ON["networkPolicy"]["metricsFrom"]}]


def test_cluster_mode_grants_the_operator_everything_it_does(render):
    objects = render()
    [deployment] = by_kind(objects, "Deployment")
    assert "--all-namespaces" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    rules = operator_rules(objects, "ClusterRole")
    for group, resource in CHILDREN:
        for verb in ("get", "list", "watch", "create", "patch", "delete"):
            assert allows(rules, group, resource, verb), (resource, verb)
    assert allows(rules, "inferencefleet.io", "inferencepools/finalizers", "update")
    assert allows(rules, "inferencefleet.io", "inferencepools/status", "patch")
    assert allows(rules, "inferencefleet.io", "fleetquotas/status", "patch")
    assert not allows(rules, "inferencefleet.io", "inferencepools", "update"), "the operator never writes spec"
    assert allows(rules, "", "pods", "list") and allows(rules, "", "pods", "patch"), "scale-in marks pods"
    assert not allows(rules, "", "pods", "delete") and not allows(rules, "", "pods", "watch"), "no rule unused"
    for group in ("", "events.k8s.io"):
        assert allows(rules, group, "events", "create") and allows(rules, group, "events", "patch")
    leases = operator_rules(objects, "Role", namespace=deployment["metadata"]["namespace"])
    for verb in ("get", "list", "watch", "create", "update", "patch"):
        assert allows(leases, "coordination.k8s.io", "leases", verb)


def test_namespaced_mode_writes_only_in_the_watched_namespaces(render):
    objects = render(watchNamespaces=["serving", "batch"])
    [deployment] = by_kind(objects, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if "namespace" in a] == ["--namespace=serving", "--namespace=batch"]
    cluster = operator_rules(objects, "ClusterRole")
    for group, resource in [*CHILDREN, ("", "pods"), ("inferencefleet.io", "inferencepools")]:
        assert not allows(cluster, group, resource, "patch") and not allows(cluster, group, resource, "list"), resource
    assert allows(cluster, "inferencefleet.io", "fleetquotas", "watch"), "FleetQuotas are cluster-scoped"
    for namespace in ("serving", "batch"):
        rules = operator_rules(objects, "Role", namespace=namespace)
        for group, resource in CHILDREN:
            assert allows(rules, group, resource, "delete"), (namespace, resource)
        assert allows(rules, "inferencefleet.io", "inferencepools", "watch")
        [binding] = [b for b in by_kind(objects, "RoleBinding") if b["metadata"]["namespace"] == namespace]
        assert binding["subjects"][0]["name"] == deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert operator_rules(objects, "Role", namespace="default") == []


def test_tenants_view_and_edit_our_kinds_through_aggregated_roles(render):
    roles = {o["metadata"]["name"].rsplit("-", 1)[-1]: o for o in by_kind(render(), "ClusterRole")
             if "aggregate-to" in str(o["metadata"].get("labels"))}
    assert roles["view"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert roles["edit"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert allows(roles["view"]["rules"], "inferencefleet.io", "inferencepools", "list")
    assert allows(roles["view"]["rules"], "inferencefleet.io", "fleetquotas", "get")
    assert not any(v in r["verbs"] for r in roles["view"]["rules"] for v in ("create", "patch", "update", "delete"))
    assert allows(roles["edit"]["rules"], "inferencefleet.io", "inferencepools", "create")
    assert allows(roles["edit"]["rules"], "inferencefleet.io", "inferencepools/scale", "update")
    assert not allows(roles["edit"]["rules"], "inferencefleet.io", "fleetquotas", "patch"), "budgets stay the platform's"


def test_chart_rule_files_are_those_of_policies_rules():
    for name in ("inferencefleet.rules.yaml", "inferencefleet.alerts.yaml"):
        assert (CHART / "files" / name).read_text() == (RULES / name).read_text(), f"{name}: run make rules"


def test_prometheus_rule_carries_the_recording_rules_and_alerts_and_promtool_accepts_it(render, tmp_path):
    [rule] = by_kind(render(**EVERYTHING_ON), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom"
    expected = [g for name in ("inferencefleet.rules.yaml", "inferencefleet.alerts.yaml")
                for g in yaml.safe_load((RULES / name).read_text())["groups"]]
    assert rule["spec"]["groups"] == expected
    alerts = {r["alert"] for g in expected for r in g["rules"] if "alert" in r}
    assert alerts == {"InferencePoolBelowSLO", "InferenceFleetTierOverBudget", "InferencePoolMetricsMissing",
                      "InferenceFleetTicksFailing", "InferenceFleetOperatorDown"}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    done = subprocess.run([binary("promtool"), "check", "rules", str(tmp_path / "rules.yaml")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_runbook_section():
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    headings = {line.lstrip("#").strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    for group in yaml.safe_load((RULES / "inferencefleet.alerts.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            anchor = rule["annotations"]["runbook"].split("#", 1)[1]
            assert rule["alert"].lower() == anchor and anchor in headings, rule["alert"]


def test_dashboard_config_map_holds_the_dashboard_file(render):
    [config_map] = by_kind(render(**EVERYTHING_ON), "ConfigMap")
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = CHART / "files" / "dashboards" / "inferencefleet.json"
    assert json.loads(config_map["data"]["inferencefleet.json"]) == json.loads(dashboard.read_text())


def test_notes_say_what_to_apply_next(render_text):
    notes = render_text("NOTES.txt", watchNamespaces=["serving"])
    assert "FleetQuota" in notes and "InferencePool" in notes and "kubectl apply" in notes
    assert "the namespaces serving" in notes and "docs/upgrading.md" in notes
