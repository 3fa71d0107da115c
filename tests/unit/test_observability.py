"""/metrics, /healthz and /readyz on one port."""

from __future__ import annotations

import httpx

from inferencefleet import observability


def test_probes_and_metrics_follow_the_operator_health() -> None:
    health = observability.Health()
    server = observability.serve(0, host="127.0.0.1", health=health)
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        assert httpx.get(f"{url}/readyz").status_code == 200  # a standby is ready
        health.standby = False
        assert httpx.get(f"{url}/readyz").status_code == 503  # a leader before its first tick is not
        health.tick_done(True)
        assert httpx.get(f"{url}/readyz").status_code == 200
        for _ in range(observability.FAILED_TICKS_UNHEALTHY):
            health.tick_done(False)
        unhealthy = httpx.get(f"{url}/healthz")
        assert unhealthy.status_code == 503 and "consecutive failed ticks" in unhealthy.text
        health.tick_done(True)
        assert httpx.get(f"{url}/healthz").status_code == 200
        observability.TICK_FAILURES.inc()
        metrics = httpx.get(f"{url}/metrics").text
        assert "inferencefleet_tick_failures_total" in metrics and "inferencefleet_tick_duration_seconds" in metrics
        assert httpx.get(f"{url}/other").status_code == 404
    finally:
        server.shutdown()


def test_a_deleted_pool_leaves_no_series() -> None:
    observability.set_pool_conditions("ns", "gone", [("Ready", "True")])
    observability.pool_series(observability.DECISIONS, "ns", "gone", "ScaleUp").inc()
    observability.set_pool_conditions("ns", "gone", [("Ready", "False")])
    text = observability.REGISTRY.get_sample_value
    assert text("inferencefleet_pool_condition", {"namespace": "ns", "pool": "gone", "condition": "Ready",
                                                  "status": "True"}) is None
    observability.forget_pool("ns", "gone")
    assert text("inferencefleet_decisions_total", {"namespace": "ns", "pool": "gone", "action": "ScaleUp"}) is None
    assert text("inferencefleet_pool_condition", {"namespace": "ns", "pool": "gone", "condition": "Ready",
                                                  "status": "False"}) is None
