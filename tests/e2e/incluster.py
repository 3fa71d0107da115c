"""What the e2e suite runs inside the cluster under test: a Prometheus that scrapes the pools' pods as their
PodMonitor says, and closed-loop load as pods (``inferencefleet load``) sending requests to a pool's Service.

Prometheus runs without Prometheus Operator, whose CRDs and controller a test cluster may not have: its scrape
job is the one Prometheus Operator generates from the PodMonitor the operator renders (Kubernetes pod
discovery, the selector's and the port's keep rules, the endpoint's relabelings and metric relabelings).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import urllib.parse
from typing import Any

import yaml
from kubernetes import client

from ..integration.operator.conftest import ClusterAccess

PROMETHEUS_NAMESPACE = "inferencefleet-e2e"
PROMETHEUS_PORT = 9090
PROMETHEUS_URL = f"http://prometheus.{PROMETHEUS_NAMESPACE}.svc:{PROMETHEUS_PORT}"
LABELS = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/part-of": "inferencefleet-e2e"}
RESTRICTED = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
              "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
"""The restricted Pod Security Standard, for every container the suite adds."""


def label_name(name: str) -> str:
    """A Kubernetes label key as Prometheus's discovery spells it in a meta label."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def relabel(rule: dict[str, Any]) -> dict[str, Any]:
    """A PodMonitor (camelCase) relabeling as a Prometheus relabel_config."""
    names = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    return {names.get(key, key): value.lower() if key == "action" else value for key, value in rule.items()}


def scrape_job(name: str, monitor: dict[str, Any]) -> dict[str, Any]:
    """The scrape job Prometheus Operator generates from a PodMonitor's spec (one endpoint)."""
    [endpoint] = monitor["podMetricsEndpoints"]
    keep = [{"source_labels": [f"__meta_kubernetes_pod_label_{label_name(key)}",
                               f"__meta_kubernetes_pod_labelpresent_{label_name(key)}"],
             "regex": f"({re.escape(value)});true", "action": "keep"}
            for key, value in monitor["selector"]["matchLabels"].items()]
    keep.append({"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": endpoint["port"],
                 "action": "keep"})
    return {"job_name": name, "kubernetes_sd_configs": [{"role": "pod"}],
            "scrape_interval": endpoint["interval"], "scrape_timeout": endpoint["interval"],
            "metrics_path": endpoint["path"],
            "relabel_configs": [*keep, *map(relabel, endpoint["relabelings"])],
            "metric_relabel_configs": [relabel(r) for r in endpoint.get("metricRelabelings", [])]}


def prometheus_objects(image: str, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Prometheus in its own namespace: RBAC to discover pods, its config, a Deployment and a Service."""
    meta = {"name": "prometheus", "namespace": PROMETHEUS_NAMESPACE, "labels": LABELS}
    cluster_meta = {"name": "inferencefleet-e2e-prometheus", "labels": LABELS}
    config = {"global": {"scrape_interval": job["scrape_interval"]}, "scrape_configs": [job]}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROMETHEUS_NAMESPACE, "labels": LABELS}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": cluster_meta,
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": cluster_meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_meta["name"]},
         "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": PROMETHEUS_NAMESPACE}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
         "data": {"prometheus.yml": yaml.safe_dump(config, sort_keys=False)}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": 1, "selector": {"matchLabels": LABELS},
            "template": {"metadata": {"labels": LABELS}, "spec": {
                "serviceAccountName": "prometheus",
                "securityContext": {"runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534},
                "containers": [{
                    "name": "prometheus", "image": image, "imagePullPolicy": "IfNotPresent",
                    "args": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                             f"--web.listen-address=:{PROMETHEUS_PORT}"],
                    "ports": [{"name": "web", "containerPort": PROMETHEUS_PORT}],
                    "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}, "periodSeconds": 2},
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "securityContext": RESTRICTED,
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/prometheus"},
                                     {"name": "data", "mountPath": "/prometheus"}]}],
                "volumes": [{"name": "config", "configMap": {"name": "prometheus"}},
                            {"name": "data", "emptyDir": {}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {
            "selector": LABELS, "ports": [{"name": "web", "port": PROMETHEUS_PORT, "targetPort": "web"}]}},
    ]


def query(access: ClusterAccess, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector, through the API server's proxy to the Prometheus Service (reachable
    wherever the API server is, no port-forward)."""
    path = (f"/api/v1/namespaces/{PROMETHEUS_NAMESPACE}/services/prometheus:{PROMETHEUS_PORT}/proxy/api/v1/query?"
            + urllib.parse.urlencode({"query": promql}))
    answer = json.loads(access.kubectl("get", "--raw", path).stdout)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


class LoadPods:
    """Closed-loop load from inside the cluster: each group of clients is one pod running ``inferencefleet load``
    (the engine-sim image has the package) against the pool's Service, so the Service's own load balancing
    spreads the requests. Stopping a group deletes its pod; its clients hang up at once."""

    def __init__(self, api: client.ApiClient, namespace: str, image: str, url: str, request: dict[str, Any]) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.image = image
        self.url = url
        self.request = request
        self.pods: list[str] = []
        self.started = itertools.count()

    def pod(self, name: str, clients: int) -> dict[str, Any]:
        command = ["inferencefleet", "load", self.url, "--clients", str(clients),
                   "--request", json.dumps(self.request), "--report-every", "2"]
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "inferencefleet-load"}},
                "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "load", "image": self.image, "imagePullPolicy": "IfNotPresent",
                                         "command": command, "securityContext": RESTRICTED,
                                         "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}]}}

    async def start(self, clients: int) -> str:
        name = f"load-{next(self.started)}"
        await asyncio.to_thread(self.core.create_namespaced_pod, self.namespace, self.pod(name, clients))
        self.pods.append(name)
        return name

    async def stop(self, group: str) -> None:
        pod = await asyncio.to_thread(self.core.read_namespaced_pod, group, self.namespace)
        log = await asyncio.to_thread(self.core.read_namespaced_pod_log, group, self.namespace, tail_lines=20)
        await self.delete(group)
        assert pod.status.phase == "Running", f"load pod {group} is {pod.status.phase}, not Running:\n{log}"
        tally = re.findall(r"completed=(\d+)", log)
        assert tally and int(tally[-1]) > 0, f"load pod {group} completed no request:\n{log}"

    async def delete(self, name: str) -> None:
        self.pods.remove(name)
        try:
            await asyncio.to_thread(self.core.delete_namespaced_pod, name, self.namespace, grace_period_seconds=0)
        except client.ApiException as error:
            if error.status != 404:
                raise

    async def close(self) -> None:
        for name in list(self.pods):
            await self.delete(name)
