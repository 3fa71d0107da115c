"""Hostile model names and extraArgs come out as inert argv entries: no shell parses them, the
kubelet's $(VAR) expansion gives them back unchanged, and the fixed multi-node launch script
passes them through to mpirun byte for byte."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inferencefleet.api.v1alpha1 import InferencePool
from inferencefleet.render.workloads import render_pool

HOSTILE = [
    "org/model; touch /tmp/PWNED",
    "$(HF_TOKEN)",
    "`touch PWNED`",
    "$(touch PWNED)",
    "a b\tc",
    "it's \"quoted\"",
    "line1\nline2",
    "$$literal $LWS_GROUP_SIZE ${HOME}",
]
FLAG_WITH_SPACES = "--flag=value with spaces"
ENV = {"HF_TOKEN": "secret-token", "LWS_WORKER_INDEX": "1", "LWS_LEADER_ADDRESS": "p-0.p.ns", "HOME": "/root"}


def engine_container(objects: list[dict[str, Any]], role: str = "leader") -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == "Deployment":
            return obj["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]
        if obj["kind"] == "LeaderWorkerSet":
            return obj["spec"]["leaderWorkerTemplate"][f"{role}Template"]["spec"]["containers"][0]  # type: ignore[no-any-return]
    raise AssertionError("no workload")


@pytest.mark.parametrize("kind", ["vllm", "trtllm"])
@pytest.mark.parametrize("hostile", HOSTILE)
def test_single_node_argv_is_inert(
    kind: str, hostile: str, make_pool: Callable[..., InferencePool], expand: Callable[[str, dict[str, str]], str]
) -> None:
    pool = make_pool(spec={"model": {"name": hostile},
                           "engine": {"kind": kind, "extraArgs": [hostile, FLAG_WITH_SPACES]}})
    engine = engine_container(render_pool(pool, replicas=1))
    assert engine["command"] in (["vllm", "serve"], ["trtllm-serve"])  # an executable, never a shell
    argv = [expand(a, ENV) for a in engine["args"]]
    assert argv[0] == hostile
    assert argv[-2:] == [hostile, FLAG_WITH_SPACES]
    assert "secret-token" not in "".join(argv)


def test_vllm_rank_is_expanded_but_user_text_is_not(
    make_pool: Callable[..., InferencePool], expand: Callable[[str, dict[str, str]], str]
) -> None:
    pool = make_pool(spec={"model": {"name": "$(LWS_WORKER_INDEX)"}, "engine": {"extraArgs": ["$(LWS_WORKER_INDEX)"]},
                           "topology": {"tensorParallel": 16, "nodesPerReplica": 2}})
    argv = [expand(a, ENV) for a in engine_container(render_pool(pool, replicas=1), "worker")["args"]]
    assert argv[0] == "$(LWS_WORKER_INDEX)" and argv[-1] == "$(LWS_WORKER_INDEX)"
    assert argv[argv.index("--node-rank") + 1] == "1"
    assert argv[argv.index("--master-addr") + 1] == "p-0.p.ns"


def _fake_tools(bin_dir: Path, record: Path) -> None:
    """mpirun that records its argv (NUL separated) and getent that resolves every host."""
    bin_dir.mkdir()
    (bin_dir / "mpirun").write_text(f"#!/bin/sh\nprintf '%s\\0' \"$@\" > '{record}'\n")
    (bin_dir / "getent").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("mpirun", "getent"):
        (bin_dir / tool).chmod(0o755)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_trtllm_leader_script_passes_argv_through(
    hostile: str, tmp_path: Path, make_pool: Callable[..., InferencePool],
    expand: Callable[[str, dict[str, str]], str],
) -> None:
    shell = shutil.which("sh")
    assert shell, "needs a POSIX sh (Debian package 'dash')"
    pool = make_pool(spec={"model": {"name": hostile},
                           "engine": {"kind": "trtllm", "extraArgs": [hostile], "env": {"NCCL_IB_HCA": "mlx5"}},
                           "topology": {"tensorParallel": 16, "nodesPerReplica": 2}})
    leader = engine_container(render_pool(pool, replicas=1), "leader")
    record = tmp_path / "argv"
    _fake_tools(tmp_path / "bin", record)
    env = {**ENV, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "LWS_GROUP_SIZE": "2"}
    env |= {e["name"]: e["value"] for e in leader["env"] if "value" in e}
    argv = [expand(a, env) for a in leader["command"] + leader["args"]]
    subprocess.run(argv, env=env, cwd=tmp_path, check=True, timeout=30)
    mpirun_argv = record.read_bytes().decode().split("\0")[:-1]
    leader_argv = [expand(a, env) for a in leader["args"]]
    assert mpirun_argv[-len(leader_argv) :] == leader_argv
    assert mpirun_argv[mpirun_argv.index("-H") + 1] == "p-0.p.ns:8,p-0-1.p.ns:8"
    assert mpirun_argv[mpirun_argv.index("-np") + 1] == "16"
    launch_at = mpirun_argv.index("trtllm-llmapi-launch")
    assert mpirun_argv[launch_at - 2 : launch_at] == ["-x", "NCCL_IB_HCA"]  # ranks started over ssh get the pod env
    engine_argv = mpirun_argv[launch_at + 1 :]
    assert engine_argv[0] == "trtllm-serve" and engine_argv[1] == hostile and engine_argv[-1] == hostile
    assert not (tmp_path / "PWNED").exists() and not Path("/tmp/PWNED").exists()
    assert hostile not in leader["command"][2]  # the script text is fixed
