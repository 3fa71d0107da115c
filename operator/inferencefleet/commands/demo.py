"""``inferencefleet demo``: the main job on an embedded default, no cluster needed.

1. validates the bundled example pools and quota (models and CRD schemas) and shows their size and cost;
2. renders one example into the objects the operator would apply;
3. simulates the example fleet (70B premium, Mixtral standard, 8B free under the example FleetQuota)
   over one day compressed to minutes under inferencefleet, HPA, KEDA, static peak and the oracle,
   prints one verdict per policy and writes the report (``sim.demo``).
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    from rich.console import Console

    from ..api.v1alpha1 import FleetQuota, InferencePool

EXAMPLES = "data/examples"
DEMO_POOL = "llama3-8b-free"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="validate and render the examples, then simulate the example fleet over a day under every autoscaler",
        description=(
            "Validate the example InferencePools and FleetQuota shipped with the package (the same files as "
            "policies/examples/) against the models and the CRD schemas and print each pool's size and cost; "
            "render the 8B example into the objects the operator applies; simulate the premium, standard and "
            "free example pools under the example FleetQuota over one day compressed to minutes (traffic "
            "from the bundled Azure trace, CC-BY 4.0) under inferencefleet and the HPA, KEDA, static and "
            "oracle baselines, print one verdict per policy and write report.html, plots and summary.json "
            "to --out. "
            "Exit 1 if an example is invalid."
        ),
    )
    parser.add_argument("--out", type=Path, default=Path("demo-out"), metavar="DIR",
                        help="directory for the rendered objects and the report (default: demo-out)")
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

    from ..extras import require
    from ..manifests import load_pools, load_quota, read_documents
    from .validate import document_problems

    require("sim")
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
    render_example(console, next(p for p in pools if p.metadata.name == DEMO_POOL), quota, args.out)
    simulate_example(console, args.out)
    return 0


def render_example(console: Console, pool: InferencePool, quota: FleetQuota, out: Path) -> None:
    """Write the objects the operator would apply for ``pool`` and list them."""
    from ..render.cost import gpu_price
    from ..render.documents import to_yaml
    from ..render.options import RenderOptions
    from ..render.workloads import render_pool

    options = RenderOptions(dollars_per_gpu_hour=gpu_price(pool, quota))
    objects = render_pool(pool, replicas=max(pool.spec.replicas.min, 1), options=options)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{pool.metadata.name}.rendered.yaml"
    path.write_text(to_yaml(objects), encoding="utf-8")
    names = ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    console.print(f"rendered {pool.metadata.name}: {names} -> {path}")


def simulate_example(console: Console, out: Path) -> None:
    """Simulate the demo fleet under every demo policy, print the verdicts and where the report is."""
    from ..sim.demo import DEMO_POLICIES, run_demo
    from .simulate import policy_progress, print_summary

    with policy_progress(console, DEMO_POLICIES) as progress:
        summary = run_demo(out, progress=progress)
    print_summary(console, summary)
    console.print(f"report: {summary['report']}")
