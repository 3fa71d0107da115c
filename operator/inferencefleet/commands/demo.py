"""``inferencefleet demo`` (first version): validate the bundled examples and show each pool's size and cost."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    from ..api.v1alpha1 import FleetQuota, InferencePool

EXAMPLES = "data/examples"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="validate the example pools and quota and print their size and cost",
        description=(
            "Validate the example InferencePools and FleetQuota shipped with the package (the same files as "
            "policies/examples/) against the models and the CRD schemas, then print per pool the GPUs and "
            "nodes per replica, the replica bounds and the hourly cost range at the quota's GPU prices. "
            "Exit 1 if an example is invalid."
        ),
    )
    parser.add_argument(
        "--examples",
        type=Path,
        metavar="DIR",
        help="directory of example YAML (default: the bundled examples)",
    )
    parser.set_defaults(func=run)


def example_files(directory: Path | None = None) -> list[str]:
    """The example YAML files, sorted (the bundled ones unless ``directory`` is given)."""
    root = directory if directory is not None else Path(str(resources.files("inferencefleet") / EXAMPLES))
    files = sorted(str(p) for p in root.glob("*.yaml"))
    if not files:
        raise UserError(f"--examples: no *.yaml files in {root}")
    return files


def _dollars(value: float | None) -> str:
    return "unpriced" if value is None else f"${value:,.2f}"


def pool_rows(pool: InferencePool, quota: FleetQuota) -> list[tuple[str, str]]:
    """(label, value) rows describing one pool: model, engine, tier, size per replica, bounds, $/h range."""
    spec = pool.spec
    gpus = spec.topology.gpus
    price = quota.spec.price(spec.topology.gpu.type)
    bounds = (spec.replicas.min, spec.replicas.max)
    low, high = (None, None) if price is None else (n * gpus * price for n in bounds)
    return [
        ("model", spec.model.name),
        ("engine", spec.engine.kind),
        ("tier", f"{spec.tier} (FleetQuota {spec.quotaRef})"),
        ("GPUs per replica", f"{gpus} x {spec.topology.gpu.type}"),
        ("nodes per replica", str(spec.topology.nodesPerReplica)),
        ("replicas", f"{bounds[0]}..{bounds[1]}"),
        ("cost per hour", f"{_dollars(low)} .. {_dollars(high)}"),
    ]


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..manifests import load_pools, load_quota, read_documents
    from .validate import document_problems

    files = example_files(args.examples)
    problems = [p for path in files for d in read_documents(path) for p in document_problems(d)]
    for problem in problems:
        print(problem)
    if problems:
        return 1
    quota_files = [f for f in files if any(d.kind == "FleetQuota" for d in read_documents(f))]
    if len(quota_files) != 1:
        raise UserError(f"examples need exactly one FleetQuota file, found {len(quota_files)}")
    quota = load_quota(quota_files[0])
    pools = load_pools([f for f in files if f not in quota_files])

    console = Console()
    for pool in pools:
        table = Table(title=f"InferencePool {pool.metadata.namespace or 'default'}/{pool.metadata.name}")
        table.add_column("FIELD", style="bold")
        table.add_column("VALUE")
        for label, value in pool_rows(pool, quota):
            table.add_row(label, value)
        console.print(table)
    console.print(f"{len(files)} example files valid (models and CRD schemas).")
    return 0
