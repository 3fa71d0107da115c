"""The Grafana dashboard and the alerts query only series that exist: the operator's metrics, the
recording rules of policies/rules, and the few named exporters' series; every expression parses."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from inferencefleet.signals.testing import binary

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "charts" / "inferencefleet" / "files" / "dashboards" / "inferencefleet.json"
RULES = ROOT / "policies" / "rules"
OPERATOR_METRICS = {
    "inferencefleet_tick_duration_seconds_bucket", "inferencefleet_tick_duration_seconds_count",
    "inferencefleet_tick_duration_seconds_sum", "inferencefleet_tick_failures_total",
    "inferencefleet_prometheus_query_failures_total", "inferencefleet_pool_condition", "inferencefleet_tier_gpus",
    "inferencefleet_tier_dollars_per_hour", "inferencefleet_tier_budget_gpus",
    "inferencefleet_tier_budget_dollars_per_hour", "inferencefleet_decisions_total",
}
"""What the operator's /metrics exports (the histogram with its three series)."""
EXPORTERS = {
    "up",  # Prometheus's own, per scraped engine (the PodMonitor adds the pool label)
    "kube_deployment_spec_replicas", "kube_deployment_status_replicas_ready",  # kube-state-metrics
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless"}


def recorded() -> set[str]:
    rules = yaml.safe_load((RULES / "inferencefleet.rules.yaml").read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"]}


def series_names(expr: str) -> set[str]:
    """Metric names ``expr`` selects (PromQL without strings, label matchers, ranges, grouping, functions)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = re.findall(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", text)
    return {n for n in names if n not in KEYWORDS}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def alert_exprs() -> list[str]:
    rules = yaml.safe_load((RULES / "inferencefleet.alerts.yaml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def test_series_names_reads_promql():
    expr = ('histogram_quantile(0.99, sum by (le) (rate(a_bucket{x=~"$p", y="b c"}[5m]))) > on (q, t) '
            'b:rec:1m or absent(c_total) * 0.001')
    assert series_names(expr) == {"a_bucket", "b:rec:1m", "c_total"}


def test_dashboard_is_grafana_json_with_the_panels_the_operators_need():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "inferencefleet"
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for needed in ("Dollars per hour per tier, against budget", "GPUs per tier", "time to first token",
                   "inter-token latency", "SLO met", "Replicas desired vs ready", "Decisions"):
        assert needed in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"] and all(t["refId"] and t["expr"] for t in panel["targets"]), panel["title"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    used = set(re.findall(r"\$(\w+)", " ".join(dashboard_exprs())))
    assert used <= variables


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_expressions_select_only_existing_series(source):
    known = OPERATOR_METRICS | EXPORTERS | recorded()
    exprs = dashboard_exprs() if source == "dashboard" else alert_exprs()
    unknown = {name for expr in exprs for name in series_names(expr)} - known
    assert unknown == set()


def test_dashboard_expressions_parse(tmp_path):
    rules = [{"record": f"dashboard:panel_{i}", "expr": e} for i, e in enumerate(dashboard_exprs())]
    (tmp_path / "dashboard.rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([binary("promtool"), "check", "rules", str(tmp_path / "dashboard.rules.yaml")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
