"""`inferencefleet render`: print the Kubernetes objects for InferencePools as multi-document YAML."""

from __future__ import annotations

import argparse


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``render`` sub-command."""
    parser = subparsers.add_parser(
        "render",
        help="print the workloads an InferencePool renders to (multi-document YAML)",
        description="Render InferencePools into the exact Deployment / LeaderWorkerSet, Service, "
        "PodDisruptionBudget, PodMonitor (and TensorRT-LLM ConfigMap) the operator applies.",
    )
    parser.add_argument("-f", "--filename", dest="files", action="extend", nargs="+", required=True, metavar="POOL.yaml",
                        help="file with one or more InferencePools ('-' reads standard input); repeatable")
    parser.add_argument("--quota", metavar="QUOTA.yaml",
                        help="FleetQuota: check the tier exists and the GPU type is priced; annotate cost")
    parser.add_argument("--replicas", type=_positive, metavar="N",
                        help="replicas (LeaderWorkerSet groups for multi-node pools); default "
                        "replicas.count, else replicas.min, at least 1")
    parser.add_argument("--max-num-seqs", type=_positive, metavar="N",
                        help="engine batch limit; default batching.maxNumSeqs.max")
    parser.add_argument("--node-gpus", type=_positive, metavar="N",
                        help="GPUs per node for the feasibility check; default topology.gpu.gpusPerNode")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render every pool in the files to standard output."""
    from ..manifests import load_pools, load_quota
    from ..render.cost import gpu_price
    from ..render.documents import to_yaml
    from ..render.errors import RenderError
    from ..render.options import RenderOptions
    from ..render.workloads import render_pool

    pools = load_pools(args.files)
    quota = load_quota(args.quota) if args.quota else None
    objects = []
    for pool in pools:
        replicas = args.replicas or max(1, pool.spec.replicas.count or pool.spec.replicas.min)
        try:
            price = gpu_price(pool, quota) if quota is not None else None
            options = RenderOptions(node_gpus=args.node_gpus, dollars_per_gpu_hour=price)
            objects += render_pool(pool, replicas=replicas, max_num_seqs=args.max_num_seqs, options=options)
        except RenderError as error:
            namespace = f"{pool.metadata.namespace}/" if pool.metadata.namespace else ""
            raise RenderError(f"InferencePool {namespace}{pool.metadata.name}: {error.field}",
                              str(error).removeprefix(f"{error.field}: ")) from None
    print(to_yaml(objects), end="")
    return 0
