"""``inferencefleet run``: the live operator (kopf) in the foreground."""

from __future__ import annotations

import argparse
import os
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
    scope.add_argument("-n", "--namespace", help="serve only this namespace")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="serve every namespace (default)")
    parser.add_argument("--prometheus", metavar="URL", help="Prometheus base URL (env PROMETHEUS_URL)")
    parser.add_argument("--tick-interval", metavar="DURATION",
                        help="time between fleet ticks, e.g. 5s (env INFERENCEFLEET_TICK_INTERVAL)")
    parser.add_argument("--liveness", metavar="URL", help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export the flags as settings, validate them, then hand over to kopf until interrupted."""
    from ..settings import OperatorSettings

    overrides = {"PROMETHEUS_URL": args.prometheus, "INFERENCEFLEET_TICK_INTERVAL": args.tick_interval,
                 "INFERENCEFLEET_NAMESPACE": args.namespace}
    os.environ.update({k: v for k, v in overrides.items() if v is not None})
    try:
        OperatorSettings.from_env().prometheus_basic_auth()  # an unreadable password file fails here, on one line
    except UserError as error:
        flag = {"PROMETHEUS_URL": "--prometheus", "INFERENCEFLEET_TICK_INTERVAL": "--tick-interval"}
        variable = str(error).split(":", 1)[0]
        raise UserError(f"{flag[variable]} ({variable}){str(error)[len(variable):]}" if variable in flag
                        else str(error)) from None

    import kopf

    from ..handlers import main  # noqa: F401  (registers the handlers)
    from ..kube.client import load_api_client

    load_api_client()  # no credentials: one clear line now, not a retried traceback later

    kopf.configure(verbose=args.verbose)
    namespace = os.environ.get("INFERENCEFLEET_NAMESPACE") or None
    kopf.run(standalone=True, clusterwide=namespace is None, namespaces=[namespace] if namespace else [],
             liveness_endpoint=args.liveness)
    return 0
