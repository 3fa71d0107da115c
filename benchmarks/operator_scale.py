"""The live operator at N pools on the real control plane: per-tick CPU, wall time, RSS, queries and API calls.

For each N (default 100 and 1,000): a fresh control plane (cluster/localcluster.py, fake GPU nodes enough
for one replica per pool), a real Prometheus backfilled with a steady load on one vLLM pod per pool from ten
minutes ago to twenty minutes ahead (the signals benchmark's history), N Managed pools, and the real ``inferencefleet run`` process ticking every
5 s. Once every pool was applied and ticked, the operator's own /metrics and /proc are read before and
after TICKS ticks. The 100-pool run is the baseline the larger one is compared with (same process, same
machine). Prints measured figures; asserts nothing.

Run: .venv/bin/python benchmarks/operator_scale.py (not operator.py: run as a script, that name would shadow the
standard library module every import needs) [--pools 100 1000] [--ticks 6]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "cluster"), str(ROOT / "benchmarks")]
import localcluster  # noqa: E402
from signals import history  # noqa: E402

from inferencefleet.signals.testing import backfill, free_port, prometheus  # noqa: E402

NAMESPACE = "bench"
TICK = 5.0
CLOCK = os.sysconf("SC_CLK_TCK")


def pools(count: int) -> list[dict[str, object]]:
    """``count`` 8B free-tier pools named like the Prometheus history (pool-0 ...)."""
    base = yaml.safe_load((ROOT / "policies/examples/llama3-8b-free.yaml").read_text())
    found = []
    for index in range(count):
        body = {**base, "metadata": {"name": f"pool-{index}", "namespace": NAMESPACE}}
        body["spec"] = {**base["spec"], "replicas": {"min": 1, "max": 2}}
        found.append(body)
    return found


def metrics(url: str) -> dict[str, float]:
    """Sum of every sample per metric name (labels folded), from the operator's /metrics."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK


def peak_rss_mb(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def run(count: int, ticks: int, work: Path) -> dict[str, float]:
    nodes = max(4, -(-count // 100))
    with localcluster.running(work / f"cluster-{count}", nodes=nodes, gpus_per_node=128, pods_per_node=128) as cluster:
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        objects = client.CustomObjectsApi(api)
        quota = yaml.safe_load((ROOT / "policies/examples/quota.yaml").read_text())
        for tier in quota["spec"]["tiers"]:
            tier["limit"] = {}
        quota["spec"]["limits"] = {}
        objects.create_cluster_custom_object("inferencefleet.io", "v1alpha1", "fleetquotas", quota)
        with ThreadPoolExecutor(8) as threads:
            list(threads.map(lambda b: objects.create_namespaced_custom_object(
                "inferencefleet.io", "v1alpha1", NAMESPACE, "inferencepools", b), pools(count)))
        data = work / f"tsdb-{count}"
        backfill(history(count, int(time.time()) + 1200, span=1800), data)  # steady load from 10 min ago on
        with prometheus(data) as url:
            port = free_port()
            env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PROMETHEUS_URL": url,
                   "INFERENCEFLEET_TICK_INTERVAL": f"{TICK:g}s", "INFERENCEFLEET_METRICS_PORT": str(port),
                   "INFERENCEFLEET_METRICS_ADDRESS": "127.0.0.1", "INFERENCEFLEET_SIGNALS_WINDOW": "2m"}
            log = (work / f"operator-{count}.log").open("wb")
            operator = subprocess.Popen([str(Path(sys.executable).with_name("inferencefleet")), "run", "-A",
                                         "--no-leader-elect", *(["-v"] if os.environ.get("BENCH_VERBOSE") else [])], env=env, stdout=log, stderr=subprocess.STDOUT)
            target = f"http://127.0.0.1:{port}"
            try:
                started = time.monotonic()
                while True:
                    time.sleep(2)
                    try:
                        seen = metrics(target)
                    except httpx.HTTPError:
                        continue
                    applied = sum(1 for p in objects.list_namespaced_custom_object(
                        "inferencefleet.io", "v1alpha1", NAMESPACE, "inferencepools")["items"]
                        if (p.get("status") or {}).get("desiredReplicas") is not None)
                    if applied == count and seen.get("inferencefleet_tick_duration_seconds_count", 0) >= 2:
                        break
                    if time.monotonic() - started > 900:
                        raise RuntimeError(f"only {applied} of {count} pools ticked after 15 minutes")
                settle = time.monotonic() - started
                before, cpu_before = metrics(target), cpu_seconds(operator.pid)
                first = before["inferencefleet_tick_duration_seconds_count"]
                while metrics(target)["inferencefleet_tick_duration_seconds_count"] < first + ticks:
                    time.sleep(TICK)  # one /metrics read per tick: rendering 1,000 pools' series costs CPU too
                after, cpu_after = metrics(target), cpu_seconds(operator.pid)
                done = after["inferencefleet_tick_duration_seconds_count"] - first

                def per_tick(name: str) -> float:
                    return (after.get(name, 0.0) - before.get(name, 0.0)) / done

                return {
                    "pools": count, "settle_s": settle,
                    "tick_wall_s": per_tick("inferencefleet_tick_duration_seconds_sum"),
                    "cpu_s_per_tick": (cpu_after - cpu_before) / done,
                    "peak_rss_mb": peak_rss_mb(operator.pid),
                    "queries_per_tick": per_tick("inferencefleet_prometheus_query_duration_seconds_count"),
                    "api_requests_per_tick": per_tick("inferencefleet_kube_api_requests_total"),
                    "api_requests_to_settle": before.get("inferencefleet_kube_api_requests_total", 0.0),
                }
            finally:
                operator.terminate()
                try:
                    operator.wait(30)
                except subprocess.TimeoutExpired:
                    operator.kill()
                    operator.wait(10)
                log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pools", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--ticks", type=int, default=6)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="operator-bench-") as folder:
        for count in args.pools:
            print(f"{count} pools ...", flush=True)
            rows.append(run(count, args.ticks, Path(folder)))
    columns = list(rows[0])
    print("\n" + " | ".join(columns))
    for row in rows:
        print(" | ".join(f"{row[c]:.3g}" for c in columns))
    base = rows[0]
    for row in rows[1:]:
        print(f"\n{row['pools']:g} vs {base['pools']:g} pools (x{row['pools'] / base['pools']:g}): " + ", ".join(
            f"{c} x{row[c] / base[c]:.2f}" for c in columns[2:] if base[c]))
    print("\nTargets at 1,000 pools: cpu_s_per_tick <= 2, peak_rss_mb <= 300, queries_per_tick constant in pools, "
          "api_requests_per_tick proportional to the pools that changed (none change here once settled).")


if __name__ == "__main__":
    main()
