"""``inferencefleet plan``: run one planner tick offline and print every decision with its reason."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeGuard

from ..errors import InvalidInput, UserError, shown

EPILOG = """\
formats:
  SIGNALS.json   what `inferencefleet signals -o json` prints (SignalsSnapshot):
                 {"at": UNIX_S, "pools": [{"namespace": NS, "pool": NAME, "at": UNIX_S,
                  "request_rate": {"value": 12.5, "at": UNIX_S}, "waiting": {...}, "running": {...},
                  "itl_p99": {"value": 0.041, "at": UNIX_S}, "ttft_p99": {...},
                  "prompt_tokens_per_second": {...}, "output_tokens_per_second": {...},
                  "kv_cache_usage": {...}, ...}]}; a missing signal is {"missing": "why"}.
                 Latencies in seconds, rates per second.
  OBSERVED.json  replicas that exist per pool:
                 {"pools": [{"namespace": NS, "name": NAME, "replicas": 4, "readyReplicas": 3,
                  "maxNumSeqs": 128, "startingSince": [UNIX_S, ...]}]}.
                 Without it every pool is taken to run its ready_replicas signal (else replicas.min),
                 all ready, with batching.maxNumSeqs.max.
  STATE.json     the planner's memory between ticks, as written by --state-out.
exit status: 0 ok; 1 invalid input (a field of a file or a flag, NaN or Infinity included, or a pool
governed by --quota whose tier or GPU type that FleetQuota does not list); 2 a file that cannot be read
or parsed.
"""


def register(subparsers: Any) -> None:
    """Add the ``plan`` sub-command."""
    parser = subparsers.add_parser(
        "plan",
        help="run one planner tick offline and print every decision with its reason",
        description="Run one planner tick (the same code the operator runs) on files: pools, quota, "
        "signals, optional observed replicas and planner state. Prints replicas, max-num-seqs, quota "
        "caps and tier usage with the reasons the operator would write to status.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-f", "--filename", action="extend", nargs="+", required=True, metavar="POOLS.yaml",
                        help="InferencePool YAML (repeatable; '-' reads stdin)")
    parser.add_argument("--quota", metavar="QUOTA.yaml", help="FleetQuota YAML (no quota: nothing is capped)")
    parser.add_argument("--signals", required=True, metavar="SIGNALS.json", help="signals snapshot JSON")
    parser.add_argument("--observed", metavar="OBSERVED.json", help="replicas that exist per pool (JSON)")
    parser.add_argument("--state", metavar="STATE.json", help="planner memory from a previous --state-out")
    parser.add_argument("--state-out", metavar="STATE.json", help="write the planner memory after this tick")
    parser.add_argument("--now", type=float, metavar="UNIX_S", help="tick time (default: the snapshot's 'at')")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table", help="output format")
    parser.set_defaults(func=run)


def _read(path: str, what: str) -> str:
    from ..manifests import read_text

    return read_text(path, f"--{what}")


def _signals(path: str) -> Any:
    from pydantic import ValidationError

    from ..planner.types import parse_json
    from ..signals.model import SignalsSnapshot

    text = _read(path, "signals")
    parse_json(text, f"--signals {path}")
    try:
        return SignalsSnapshot.model_validate_json(text)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise InvalidInput(f"--signals {path}: {where}: {first['msg']}, got {shown(first['input'])} "
                           "(expected `signals -o json` output)") from None


def _check_quota(pools: Sequence[Any], quota: Any, path: str) -> None:
    """Every pool the quota governs must have a tier in it and a priced GPU type."""
    from ..planner.quota import ungovernable

    problems = [
        f"pool {pool.metadata.namespace or 'default'}/{pool.metadata.name}: {problem}"
        for pool in pools
        if pool.spec.quotaRef == quota.metadata.name
        and (problem := ungovernable(quota, pool.spec.tier, pool.spec.topology.gpu.type))
    ]
    if problems:
        raise InvalidInput(f"--quota {path}: {'; '.join(problems)}")


_OBSERVED_FIELDS = {"namespace", "name", "replicas", "readyReplicas", "maxNumSeqs", "startingSince"}


def _observed(path: str) -> dict[tuple[str, str], Any]:
    from ..planner.types import PoolObservation, parse_json

    document = parse_json(_read(path, "observed"), f"--observed {path}")
    if not isinstance(document, dict) or not isinstance(document.get("pools"), list):
        raise InvalidInput(f"--observed {path}: must be an object with a 'pools' list")
    found = {}
    for index, row in enumerate(document["pools"]):
        where = f"--observed {path}: pools[{index}]"
        if not isinstance(row, dict) or not {"name", "replicas"} <= row.keys():
            raise InvalidInput(f"{where}: needs at least 'name' and 'replicas'; allowed: {sorted(_OBSERVED_FIELDS)}")
        unknown = set(row) - _OBSERVED_FIELDS
        if unknown:
            raise InvalidInput(f"{where}: unknown fields {sorted(unknown)}; allowed: {sorted(_OBSERVED_FIELDS)}")
        replicas, ready = row["replicas"], row.get("readyReplicas", row["replicas"])
        seqs, starting = row.get("maxNumSeqs"), row.get("startingSince", [])
        if not (_integer(replicas) and _integer(ready) and 0 <= ready <= replicas <= MAX_REPLICAS):
            raise InvalidInput(f"{where}: replicas and readyReplicas must be integers with 0 <= readyReplicas "
                               f"<= replicas <= {MAX_REPLICAS} (got {shown(replicas)}, {shown(ready)})")
        if seqs is not None and not (_integer(seqs) and 1 <= seqs <= MAX_REPLICAS):
            raise InvalidInput(f"{where}: maxNumSeqs must be a positive integer (got {shown(seqs)})")
        if not (isinstance(starting, list) and all(_finite(t) for t in starting)):
            raise InvalidInput(f"{where}: startingSince must be a list of Unix times (got {shown(starting)})")
        key = (str(row.get("namespace", "default")), str(row["name"]))
        found[key] = PoolObservation(replicas, ready, seqs, tuple(float(t) for t in starting))
    return found


MAX_REPLICAS = 2**31 - 1
"""Most replicas (and max-num-seqs) a workload can hold: an int32."""


def _integer(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _default_observation(pool: Any, snapshot: Any) -> Any:
    from ..planner.types import PoolObservation

    key = (pool.metadata.namespace or "default", pool.metadata.name)
    ready = snapshot.for_pool(*key).ready_replicas.value
    replicas = round(ready) if ready is not None else pool.spec.replicas.min
    return PoolObservation(replicas, replicas, pool.spec.batching.maxNumSeqs.max if replicas else None)


def run(args: argparse.Namespace) -> int:
    """Load the inputs, run one tick, print the decisions (and write the state if asked)."""
    from ..manifests import load_pools, load_quota
    from ..planner.controller import tick
    from ..planner.memory import FleetState

    if args.now is not None and not math.isfinite(args.now):
        raise InvalidInput(f"--now: must be a finite Unix time in seconds, got {args.now}")
    pools = load_pools(args.filename)
    quota = load_quota(args.quota) if args.quota else None
    if quota is not None:
        _check_quota(pools, quota, args.quota)
    snapshot = _signals(args.signals)
    observed = _observed(args.observed) if args.observed else {}
    for pool in pools:
        key = (pool.metadata.namespace or "default", pool.metadata.name)
        observed.setdefault(key, _default_observation(pool, snapshot))
    state = FleetState.from_json(_read(args.state, "state"), f"--state {args.state}") if args.state else FleetState()
    now = snapshot.at if args.now is None else args.now
    result = tick(pools, quota, snapshot, observed, state, now)
    print(_json(result, now) if args.output == "json" else _table(result))
    if args.state_out:
        try:
            Path(args.state_out).write_text(result.state.to_json() + "\n", encoding="utf-8")
        except OSError as error:
            raise UserError(f"--state-out {args.state_out}: cannot write: {error.strerror or error}") from None
    return 0


def _json(result: Any, now: float) -> str:
    decisions = []
    for decision in result.decisions:
        row = asdict(decision)
        namespace, name = row.pop("key")
        row["records"] = [{"action": r.action, "from": r.from_, "to": r.to, "reason": r.reason}
                          for r in decision.records]
        decisions.append({"namespace": namespace, "name": name, **row})
    tiers = [t.to_status().to_wire() for t in result.tiers]
    return json.dumps({"at": now, "decisions": decisions, "tiers": tiers, "overBudget": result.over_budget},
                      indent=2)


def _align(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _table(result: Any) -> str:
    rows = [("POOL", "MODE", "TIER", "REPLICAS", "DESIRED", "CAP", "MAX-SEQS", "RECOMMENDED", "APPLIED")]
    for d in result.decisions:
        seqs = f"{d.max_num_seqs}{' (rollout)' if d.rollout_max_num_seqs else ''}"
        rows.append((f"{d.key[0]}/{d.key[1]}", d.mode, d.tier, str(d.current_replicas), str(d.desired_replicas),
                     "-" if d.quota_cap is None else str(d.quota_cap), seqs, str(d.recommended_max_num_seqs),
                     "yes" if d.applied else "no"))
    lines = [*_align(rows), ""]
    for d in result.decisions:
        lines.append(f"{d.key[0]}/{d.key[1]}:")
        lines.extend(f"  {r.action}: {r.reason}" for r in d.records)
        lines.extend(f"  {c.type}={c.status} ({c.reason}): {c.message}" for c in d.conditions)
    if result.tiers:
        tiers = [("TIER", "GPUS", "$/H", "BORROWED-GPUS", "POOLS", "CAPPED-POOLS")]
        tiers.extend((t.name, str(t.gpus), f"{t.dollars_per_hour:.2f}", str(t.borrowed_gpus), str(t.pools),
                      str(t.capped_pools)) for t in result.tiers)
        lines.extend(["", *_align(tiers)])
    if result.over_budget:
        lines.append(f"over budget: {result.over_budget}")
    return "\n".join(lines)
