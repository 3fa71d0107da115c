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
    assert "forecast 30.0 req/s (no trend in the first 240s of traffic) over the 60s cold start needs" in out
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


def _pool_with(tmp_path, *replacements):
    """The 8B example with each (old, new) text replacement applied."""
    text = Path(POOLS[0]).read_text()
    for old, new in replacements:
        text = text.replace(old, new)
    path = tmp_path / "pool.yaml"
    path.write_text(text)
    return str(path)


UNREADABLE = {
    "missing pool file": (lambda t: ["-f", "NOPE.yaml"], "NOPE.yaml: cannot read"),
    "missing quota file": (lambda t: ["--quota", "NOPE.yaml"], "NOPE.yaml: cannot read"),
    "missing signals file": (lambda t: ["--signals", "NOPE.json"], "--signals NOPE.json: cannot read"),
    "missing observed file": (lambda t: ["--observed", "NOPE.json"], "--observed NOPE.json: cannot read"),
    "malformed signals": (lambda t: ["--signals", _write(t, "{not json")], "malformed JSON: Expecting property name"),
    "malformed state": (lambda t: ["--state", _write(t, "{not json")], "malformed JSON"),
    "signals not UTF-8": (lambda t: ["--signals", _write(t, b'{"at": "\xff"}')], "not UTF-8 text (byte 0xff"),
    "signals nested 100000 deep": (lambda t: ["--signals", _write(t, "[" * 100_000 + "]" * 100_000)],
                                   "unreadable JSON: nested too deeply"),
    "observed integer of 5000 digits": (
        lambda t: ["--observed", _write(t, '{"pools": [{"name": "x", "replicas": ' + "9" * 5000 + "}]}")],
        "unreadable JSON: Exceeds the limit (4300 digits)"),
}
"""Files that cannot be read or parsed: exit status 2."""

INVALID = {
    "signals not an object": (lambda t: ["--signals", _write(t, "[1]")], ": document: Input should be an object"),
    "NaN in the signals": (
        lambda t: ["--signals", _write(t, Path(snapshot(t)).read_text().replace("30.0", "NaN", 1))],
        "pools.0.request_rate.value: Input should be a finite number, got nan"),
    "Infinity in the signals": (
        lambda t: ["--signals", _write(t, Path(snapshot(t)).read_text().replace('"at": 1000.0', '"at": -Infinity', 1))],
        "at: Input should be a finite number, got -inf"),
    "a state time that is text": (
        lambda t: ["--state", _write(t, json.dumps({"pools": [{"namespace": "serving", "name": "x",
                                                                "updated_at": "yesterday"}]}))],
        "pools[0].updated_at: Input should be a valid number, got 'yesterday'"),
    "a state list of the wrong shape": (
        lambda t: ["--state", _write(t, json.dumps({"pools": [{"namespace": "serving", "name": "x",
                                                                "scale": {"needs": [[1.0, 2, 3]]}}]}))],
        "pools[0].scale.needs[0]: Tuple should have at most 2 items"),
    "a state headroom below 1": (
        lambda t: ["--state", _write(t, json.dumps({"pools": [{"namespace": "serving", "name": "x",
                                                                "headroom": {"value": 0}}]}))],
        "pools[0].headroom.value: Input should be greater than or equal to 1, got 0"),
    "--now nan": (lambda t: ["--now", "nan"], "--now: must be a finite Unix time in seconds, got nan"),
    "--now inf": (lambda t: ["--now", "inf"], "--now: must be a finite Unix time in seconds, got inf"),
    "observed NaN start time": (
        lambda t: ["--observed", _write(t, '{"pools": [{"name": "x", "replicas": 1, "startingSince": [NaN]}]}')],
        "startingSince must be a list of Unix times (got [nan])"),
    "tier not in the quota": (
        lambda t: ["-f", _pool_with(t, ("tier: free", "tier: gold"))],
        "pool serving/llama3-8b-free: spec.tier: 'gold' is not a tier of FleetQuota 'default'; "
        "allowed: premium, standard, free"),
    "GPU type without a price": (
        lambda t: ["-f", _pool_with(t, ("type: H100-80GB", "type: L4"))],
        "pool serving/llama3-8b-free: spec.topology.gpu.type: 'L4' has no price in FleetQuota 'default' "
        "gpuPrices; priced types: H100-80GB"),
}
"""Input that was read but is invalid: exit status 1."""
BAD_INPUTS = {**{k: (*v, 2) for k, v in UNREADABLE.items()}, **{k: (*v, 1) for k, v in INVALID.items()}}


def _write(tmp_path, text):
    path = tmp_path / "input.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_inputs_are_one_line_errors(tmp_path, capsys, case):
    extra, message, code = BAD_INPUTS[case]
    base = {"-f": POOLS[0], "--quota": f"{EXAMPLES}/quota.yaml", "--signals": snapshot(tmp_path)}
    given = extra(tmp_path)
    base.update(dict(zip(given[::2], given[1::2], strict=True)))
    assert main(["plan", *(a for item in base.items() for a in item)]) == code
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("inferencefleet plan: error:") and message in err and "\n" not in err
    assert captured.out == ""


def test_a_pool_of_another_quota_is_not_checked_against_this_one(tmp_path, capsys):
    other = _pool_with(tmp_path, ("tier: free", "tier: gold"), ("quotaRef: default", "quotaRef: elsewhere"))
    assert main(["plan", "-f", other, "--quota", f"{EXAMPLES}/quota.yaml", "--signals", snapshot(tmp_path)]) == 0
    assert "quotaRef 'elsewhere' is not FleetQuota 'default'" in capsys.readouterr().out


def test_signals_that_are_not_a_snapshot_are_rejected(tmp_path, capsys):
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"pools": []}))
    assert main(["plan", "-f", POOLS[0], "--signals", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "--signals" in err and "at: Field required" in err


def test_observed_rows_are_validated(tmp_path, capsys):
    observed = tmp_path / "o.json"
    observed.write_text(json.dumps({"pools": [{"name": "x", "replicas": 1, "readyReplicas": 4}]}))
    assert main(["plan", "-f", POOLS[0], "--signals", snapshot(tmp_path), "--observed", str(observed)]) == 1
    assert "0 <= readyReplicas <= replicas" in capsys.readouterr().err


def test_reads_the_document_signals_json_prints(tmp_path, capsys):
    from inferencefleet.signals.model import PoolSignals, Sample, SignalsSnapshot

    printed = SignalsSnapshot(at=1000.0, pools=[PoolSignals(
        namespace="serving", pool="llama3-8b-free", at=1000.0, request_rate=Sample.of(30.0, 995.0),
        waiting=Sample.of(0.0, 995.0), running=Sample.of(120.0, 995.0), itl_p99=Sample.of(float("nan"), 995.0),
    )]).model_dump_json(indent=2)  # what `inferencefleet signals -o json` prints
    path = tmp_path / "printed.json"
    path.write_text(printed)
    assert main(["plan", "-f", POOLS[0], "--signals", str(path)]) == 0
    out = capsys.readouterr().out
    assert "forecast 30.0 req/s" in out and "SLOMet=Unknown (NoLatencySignals)" in out


def test_a_partial_scrape_in_the_signals_holds_and_says_so(tmp_path, capsys):
    doc = json.loads(Path(snapshot(tmp_path)).read_text())
    doc["pools"][0]["scraped_replicas"] = {"value": 3, "at": 1000.0}
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(doc))
    observed = tmp_path / "observed.json"
    observed.write_text(json.dumps({"pools": [{"namespace": "serving", "name": "llama3-8b-free", "replicas": 8}]}))
    assert main(["plan", "-f", POOLS[0], "--signals", str(path), "--observed", str(observed), "-o", "json"]) == 0
    [decision] = json.loads(capsys.readouterr().out)["decisions"]
    assert decision["desired_replicas"] == 8
    metrics = next(c for c in decision["conditions"] if c["type"] == "MetricsAvailable")
    assert metrics["reason"] == "PartialScrape" and "only 3 of the 8 ready replicas were scraped" in metrics["message"]


def test_json_output_carries_each_pools_sizing_trace(tmp_path, capsys):
    assert main(args(tmp_path, "-o", "json")) == 0
    decisions = {d["name"]: d for d in json.loads(capsys.readouterr().out)["decisions"]}
    free, mixtral = decisions["llama3-8b-free"]["sizing"], decisions["mixtral-trtllm-standard"]["sizing"]
    assert free["demand"] == pytest.approx(30.0) and free["horizon"] == 60.0 and free["trend_warming"] is True
    assert free["needed"] * free["replica_rate"] >= free["demand"] > (free["needed"] - 1) * free["replica_rate"]
    assert mixtral["demand"] is None and mixtral["needed"] is None and mixtral["replica_rate"] > 0
