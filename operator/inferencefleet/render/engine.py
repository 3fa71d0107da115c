"""What every engine renderer provides, and the argv rules they share.

User-controlled values (model names, extra arguments) only ever become whole argv entries,
escaped with :func:`inert` so the kubelet's ``$(VAR)`` expansion leaves them untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..api.v1alpha1 import InferencePool
from .errors import RenderError
from .model_source import model_source
from .options import RenderOptions

Role = Literal["single", "leader", "worker"]
"""single: the only pod of a replica; leader / worker: pods of a multi-node LeaderWorkerSet group."""


@dataclass(frozen=True)
class Launch:
    """How one pod role starts the engine."""

    command: list[str]
    args: list[str]
    serves_api: bool = True
    """True when the pod serves the OpenAI API and metrics (probes, Service, PodMonitor target)."""
    env: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Engine:
    """One serving engine: its launch, its metrics path and its feasibility rules."""

    kind: str
    metrics_path: str
    quantizations: tuple[str, ...]
    """model.quantization values the engine serves."""
    managed_flags: frozenset[str]
    """Normalised flag names (see :func:`flag_name`) that the renderer sets and extraArgs must not repeat."""
    aliases: Mapping[str, str]
    """Short spellings of managed flags, e.g. vLLM's '-tp'."""
    launch: Callable[[InferencePool, int, Role, RenderOptions], Launch]
    config_files: Callable[[InferencePool], dict[str, str]]
    """Files for the engine's ConfigMap ({} when it needs none)."""
    check: Callable[[InferencePool, str], None]
    """Engine-specific feasibility checks of a pool and the image it runs; raise RenderError."""


def inert(value: str) -> str:
    """``value`` escaped so the kubelet's ``$(VAR)`` expansion of command/args gives it back unchanged."""
    return value.replace("$", "$$")


def flag_name(arg: str) -> str | None:
    """The normalised name of a command-line flag, None for values.

    '--Max_Num_Seqs=4' -> 'max-num-seqs'; vLLM's dotted sub-key '--speculative-config.method' -> 'speculative-config'.
    """
    if not arg.startswith("-") or arg.lstrip("-")[:1].isdigit():
        return None
    words = arg.lstrip("-").split("=", 1)[0].split()
    if not words:
        return None
    name = words[0].lower().replace("_", "-").split(".", 1)[0]
    return name.removeprefix("no-")


def check_extra_args(pool: InferencePool, engine: Engine) -> None:
    """Refuse extraArgs that repeat (or negate) a flag the renderer manages, naming the flag."""
    for index, arg in enumerate(pool.spec.engine.extraArgs):
        name = flag_name(arg)
        if name is None:
            continue
        managed = engine.aliases.get(name, name)
        if managed in engine.managed_flags:
            raise RenderError(
                f"spec.engine.extraArgs[{index}]",
                f"{arg.split('=', 1)[0].split()[0]!r} duplicates the managed flag '--{managed}' "
                f"(set it through the InferencePool spec instead); managed flags for "
                f"{engine.kind}: {', '.join('--' + f for f in sorted(engine.managed_flags))}",
            )


def check_values_are_not_flags(pool: InferencePool) -> None:
    """Refuse a model path (from spec.model.uri) that the engine's argument parser would read as a flag.

    The API already refuses model and served names starting with '-'; a uri's path is known only here.
    """
    if pool.spec.model.uri is None:
        return
    value = model_source(pool).path
    if value.startswith("-"):
        raise RenderError(
            "spec.model.uri",
            f"{value!r} starts with '-', so the engine would parse it as a flag; allowed: a model path "
            "that does not start with '-'",
        )


def served_name(pool: InferencePool) -> str:
    """Name clients put in the OpenAI 'model' field."""
    return pool.spec.model.servedName or pool.spec.model.name
