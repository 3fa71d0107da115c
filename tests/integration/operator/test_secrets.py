"""Planted credentials reach no log line, Event or status, on the real control plane with a real Prometheus."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from kubernetes import client

from .conftest import (
    ControlPlane,
    create,
    events_of,
    example,
    get_pool,
    has_condition,
    pool,
    running_operator,
    wait_for,
)
from .test_operator import loaded_prometheus  # noqa: F401  (fixture)

PASSWORD = "planted-password"
TOKEN = "planted-token\nsecond-line-kq7"
PLANTED = (PASSWORD, base64.b64encode(f"planted-user:{PASSWORD}".encode()).decode(), "planted-token", "second-line-kq7")


def leaks(text: str) -> list[str]:
    return [secret for secret in PLANTED if secret in text]


def test_planted_credentials_reach_no_log_event_or_status(
        control_plane: ControlPlane, namespace: str, tmp_path: Path, loaded_prometheus: str) -> None:  # noqa: F811
    api = control_plane.api()
    with_user = loaded_prometheus.replace("://", f"://planted-user:{PASSWORD}@")
    # --verbose: the HTTP library logs every request it sends
    with running_operator(control_plane, tmp_path, prometheus_url=with_user, args=("--verbose",)) as by_url:
        create(api, example("quota.yaml"))
        create(api, pool("busy", namespace))
        wait_for(lambda: has_condition(api, namespace, "busy", "MetricsAvailable", "True"), "signals read with basic auth")
        wait_for(lambda: events_of(api, namespace, "busy", "ScaleUp"), "a ScaleUp Event")
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")  # an interior newline: the HTTP library refuses the header and quotes it
    with running_operator(control_plane, tmp_path, prometheus_url=loaded_prometheus,
                          env={"PROMETHEUS_BEARER_TOKEN_FILE": str(token)}, args=("--verbose",)) as by_token:
        failed = wait_for(lambda: has_condition(api, namespace, "busy", "MetricsAvailable", "False"),
                          "the refused token reported on the pool")
    assert "Illegal header value" in failed["message"] and "***" in failed["message"], failed["message"]
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    texts = {"first operator's log": by_url.output, "second operator's log": by_token.output,
             "status": json.dumps(get_pool(api, namespace, "busy")["status"]),
             "events": "\n".join(f"{e.reason} {e.message}" for e in events)}
    assert "HTTP Request: POST" in by_url.output  # the verbose request lines were there to leak
    assert {name: leaks(text) for name, text in texts.items() if leaks(text)} == {}
