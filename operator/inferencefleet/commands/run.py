"""``inferencefleet run``: the live operator (kopf) in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
import threading
from pathlib import Path
from typing import Any

from ..errors import UserError


def register(subparsers: Any) -> None:
    """Add the ``run`` sub-command."""
    parser = subparsers.add_parser(
        "run", help="run the operator against the cluster in KUBECONFIG (or in-cluster)",
        description="Run the operator: reconcile InferencePools and FleetQuotas, tick every pool against "
        "Prometheus signals. Flags override the environment (PROMETHEUS_*, INFERENCEFLEET_*).",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append",
                       help="serve only this namespace (repeat for several)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="serve every namespace (default)")
    parser.add_argument("--prometheus", metavar="URL", help="Prometheus base URL (env PROMETHEUS_URL)")
    parser.add_argument("--tick-interval", metavar="DURATION",
                        help="time between fleet ticks, e.g. 5s (env INFERENCEFLEET_TICK_INTERVAL)")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        default=int(os.environ.get("INFERENCEFLEET_METRICS_PORT", "8080")),
                        help="port of /metrics, /healthz and /readyz (default 8080; 0: any free port)")
    parser.add_argument("--metrics-address", metavar="ADDR",
                        default=os.environ.get("INFERENCEFLEET_METRICS_ADDRESS", "0.0.0.0"),
                        help="address that port listens on (default 0.0.0.0: the pod's network)")
    parser.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                        help="run only while holding the Lease 'inferencefleet' (default: on; replicas stand by)")
    parser.add_argument("--lease-namespace", metavar="NS",
                        help="namespace of the leader Lease (default: the pod's namespace, else 'default')")
    parser.add_argument("--log-format", choices=["text", "json"], default="text", help="log line format")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export the flags as settings, validate them, then hand over to kopf until interrupted."""
    from ..settings import OperatorSettings

    namespaces = args.namespace or ([os.environ["INFERENCEFLEET_NAMESPACE"]]
                                    if os.environ.get("INFERENCEFLEET_NAMESPACE") else [])
    overrides = {"PROMETHEUS_URL": args.prometheus, "INFERENCEFLEET_TICK_INTERVAL": args.tick_interval,
                 # one namespace also narrows the signal queries; several are filtered by pool
                 "INFERENCEFLEET_NAMESPACE": namespaces[0] if len(namespaces) == 1 else None}
    os.environ.update({k: v for k, v in overrides.items() if v is not None})
    try:
        OperatorSettings.from_env().prometheus_basic_auth()  # an unreadable password file fails here, on one line
    except UserError as error:
        flag = {"PROMETHEUS_URL": "--prometheus", "INFERENCEFLEET_TICK_INTERVAL": "--tick-interval"}
        variable = str(error).split(":", 1)[0]
        raise UserError(f"{flag[variable]} ({variable}){str(error)[len(variable):]}" if variable in flag
                        else str(error)) from None

    import kopf

    from .. import observability
    from ..handlers import main  # noqa: F401  (registers the handlers)
    from ..kube.client import load_api_client
    from ..kube.leader import Leadership
    from ..redaction import install_log_redaction

    api = load_api_client()  # no credentials: one clear line now, not a retried traceback later
    kopf.configure(verbose=args.verbose,
                   log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL)
    install_log_redaction()
    for chatty in ("httpx", "leaderelection"):  # a line per query / per lease retry: kept for --verbose
        logging.getLogger(chatty).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        observability.serve(args.metrics_port, args.metrics_address)
    except OSError as error:
        raise UserError(f"--metrics-port {args.metrics_port}: cannot listen: {error.strerror}") from None
    stop = threading.Event()
    leadership = Leadership(api, "inferencefleet", args.lease_namespace or _pod_namespace()) \
        if args.leader_elect else None
    if leadership is not None:
        leadership.acquire()
        leadership.keep(on_lost=stop.set)
    observability.HEALTH.standby = False
    observability.LEADER.set(1)
    try:
        kopf.run(standalone=True, clusterwide=not namespaces, namespaces=namespaces, stop_flag=stop,
                 memo=kopf.Memo(stop_flag=stop))
    finally:
        observability.LEADER.set(0)
        if leadership is not None and leadership.leading.is_set():
            leadership.release()
    if leadership is not None and stop.is_set() and not leadership.leading.is_set():
        logging.getLogger(__name__).error("Stopped: the leader Lease was lost")
        return 1
    return 0


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _pod_namespace() -> str:
    """The namespace this pod runs in (POD_NAMESPACE, else the service account's), else 'default'."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"
