"""`inferencefleet plan`: one offline tick from files, table and JSON output, state in/out, input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inferencefleet.cli import main

EXAMPLES = str(Path(__file__).resolve().parents[3] / "policies" / "examples")
POOLS = [f"{EXAMPLES}/llama3-8b-free.yaml", f"{EXAMPLES}/mixtral-trtllm-standard.yaml"]


def snapshot(tmp_path, rate=30.0):
    sample = lambda v: {"value": v, "at": 1000.0}  # noqa: E731
    doc = {"at": 1000.0, "pools": [{
        "namespace": "serving", "pool": "llama3-8b-free", "at": 1000.0,
        "request_rate": sample(rate), "waiting": sample(0.0), "running": sample(rate * 4),
        "itl_p99": sample(0.045),
    }]}
    path = tmp_path / "signals.json"
    path.write_text(json.dumps(doc))
    return str(path)


def args(tmp_path, *extra):
    files = [a for p in POOLS for a in ("-f", p)]
    return ["plan", *files, "--quota", f"{EXAMPLES}/quota.yaml", "--signals", snapshot(tmp_path), *extra]


def test_table_lists_every_pool_with_reasons(tmp_path, capsys):
    assert main(args(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "serving/llama3-8b-free" in out and "serving/mixtral-trtllm-standard" in out
    assert "forecast 30.0 req/s over the 60s cold start needs" in out
    assert "signals missing (request_rate: no series for this pool" in out  # mixtral has no series
    assert "TIER" in out and "premium" in out


def test_json_output_and_state_round_trip(tmp_path, capsys):
    state = tmp_path / "state.json"
    observed = tmp_path / "observed.json"
    observed.write_text(json.dumps({"pools": [
        {"namespace": "serving", "name": "llama3-8b-free", "replicas": 3, "readyReplicas": 2,
         "maxNumSeqs": 256, "startingSince": [990.0]}]}))
    assert main(args(tmp_path, "-o", "json", "--observed", str(observed), "--state-out", str(state))) == 0
    doc = json.loads(capsys.readouterr().out)
    free = next(d for d in doc["decisions"] if d["name"] == "llama3-8b-free")
    assert free["current_replicas"] == 3 and free["records"][0]["reason"].startswith("hold 3 (1 still starting)")
    assert {t["name"] for t in doc["tiers"]} == {"premium", "standard", "free"}
    memory = json.loads(state.read_text())["pools"]
    assert {m["name"] for m in memory} == {"llama3-8b-free", "mixtral-trtllm-standard"}
    assert main(args(tmp_path, "--state", str(state), "--now", "1015")) == 0


@pytest.mark.parametrize(("extra", "message"), [
    (["--observed", "MISSING.json"], "--observed MISSING.json: cannot read"),
    (["--state", "BAD"], "--state BAD: malformed JSON"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, capsys, extra, message):
    for i, value in enumerate(extra):
        if value == "BAD":
            bad = tmp_path / "bad.json"
            bad.write_text("{not json")
            extra[i] = str(bad)
            message = message.replace("BAD", str(bad))
    assert main(args(tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("inferencefleet plan: error:") and message in err and "\n" not in err


def test_signals_that_are_not_a_snapshot_are_rejected(tmp_path, capsys):
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"pools": []}))
    assert main(["plan", "-f", POOLS[0], "--signals", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "--signals" in err and "at: Field required" in err


def test_observed_rows_are_validated(tmp_path, capsys):
    observed = tmp_path / "o.json"
    observed.write_text(json.dumps({"pools": [{"name": "x", "replicas": 1, "readyReplicas": 4}]}))
    assert main(["plan", "-f", POOLS[0], "--signals", snapshot(tmp_path), "--observed", str(observed)]) == 2
    assert "0 <= readyReplicas <= replicas" in capsys.readouterr().err
