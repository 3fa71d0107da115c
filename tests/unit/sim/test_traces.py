"""Trace loaders: the three formats, compression, rate scaling, and one-line errors on bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from inferencefleet.errors import UserError
from inferencefleet.sim.replica import Request
from inferencefleet.sim.traces import (
    Trace,
    bundled_trace_path,
    compress,
    load_trace,
    scale_rate,
    truncate,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_azure_csv_with_seven_digit_fractions(tmp_path: Path) -> None:
    path = write(tmp_path, "azure.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                 "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n")
    trace = load_trace(path)
    assert [(r.arrival, r.prompt_tokens, r.output_tokens) for r in trace.requests] == [
        (0.0, 374, 44), (pytest.approx(4.314579), 396, 109)
    ]


def test_generic_csv_in_seconds_is_sorted_and_rebased(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "time,prompt_tokens,output_tokens\n12.5,10,3\n10.0,20,0\n")
    trace = load_trace(path, "csv")
    assert [(r.arrival, r.prompt_tokens, r.output_tokens) for r in trace.requests] == [
        (0.0, 20, 1), (2.5, 10, 3)
    ]


def test_jsonl_milliseconds_and_optional_hash_ids(tmp_path: Path) -> None:
    lines = [{"timestamp": 1000, "input_length": 5, "output_length": 7, "hash_ids": [1, 2]},
             {"timestamp": 3500, "input_length": 8, "output_length": 2}]
    path = write(tmp_path, "t.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    trace = load_trace(path)
    assert [(r.arrival, r.prompt_tokens, r.output_tokens) for r in trace.requests] == [(0.0, 5, 7), (2.5, 8, 2)]


def test_envelope_draws_poisson_arrivals_and_lengths_from_a_trace(tmp_path: Path) -> None:
    lengths = load_trace(bundled_trace_path())
    path = write(tmp_path, "env.csv", "window_start_s,rate_rps\n0,2\n600,20\n1200,0\n")
    trace = load_trace(path, lengths=lengths, seed=1)
    first = sum(r.arrival < 600 for r in trace.requests)
    second = sum(600 <= r.arrival < 1200 for r in trace.requests)
    assert first == pytest.approx(1200, rel=0.1) and second == pytest.approx(12000, rel=0.05)
    assert all(r.arrival < 1200 for r in trace.requests)
    pool = {(r.prompt_tokens, r.output_tokens) for r in lengths.requests}
    assert all((r.prompt_tokens, r.output_tokens) in pool for r in trace.requests)
    again = load_trace(path, lengths=lengths, seed=1)
    assert again.requests == trace.requests


def test_bundled_trace_loads() -> None:
    trace = load_trace(bundled_trace_path())
    assert len(trace.requests) == 4204 and 840 < trace.duration < 860


def test_compress_scale_and_truncate(tmp_path: Path) -> None:
    trace = load_trace(bundled_trace_path())
    fast = compress(trace, 4)
    assert fast.duration == pytest.approx(trace.duration / 4)
    doubled = scale_rate(trace, 2.5, seed=3)
    assert len(doubled.requests) == pytest.approx(2.5 * len(trace.requests), rel=0.03)
    assert doubled.duration <= trace.duration + 1
    assert all(a.arrival <= b.arrival for a, b in zip(doubled.requests, doubled.requests[1:], strict=False))
    assert truncate(trace, 60).duration < 60


def test_scale_rate_copies_take_other_requests_lengths_from_the_same_minute() -> None:
    """One 8,000-token prompt among short ones: x20 keeps about 20 such prompts per minute's mix, not a
    1-second burst of 20 identical ones."""
    short = [Request(i, i * 0.6, 100, 10) for i in range(100)]  # one minute of 100-token prompts
    trace = Trace("t", tuple(sorted([*short, Request("long", 30.0, 8000, 10),
                                     *(Request(f"next{i}", 60.0 + i, 2000, 50) for i in range(10))],
                                    key=lambda r: r.arrival)))
    scaled = scale_rate(trace, 20, seed=1)
    near_long = [r for r in scaled.requests if 30.0 <= r.arrival <= 31.0]
    assert sum(r.prompt_tokens == 8000 for r in near_long) <= 3 < len(near_long)
    first_minute = [r for r in scaled.requests if r.arrival < 60.0]
    assert 5 <= sum(r.prompt_tokens == 8000 for r in first_minute) <= 40  # the minute's mix: 1 in 101
    assert all(r.prompt_tokens == 2000 for r in scaled.requests if str(r.id).startswith("next"))  # its own minute's


@pytest.mark.parametrize(
    ("name", "text", "fmt", "message"),
    [
        ("a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,12,x\n", "csv",
         "a.csv:2: column 'GeneratedTokens': 'x' is not a token count"),
        ("b.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,12,3\n", "csv",
         "b.csv:2: column 'TIMESTAMP': 'yesterday' is neither seconds nor a date-time"),
        ("c.csv", "when,in,out\n1,2,3\n", "csv", "c.csv:1: no timestamp column"),
        ("d.csv", "time,input_tokens,output_tokens\n1,2,3\n4,5\n", "csv", "d.csv:3: has 2 columns"),
        ("e.jsonl", '{"timestamp": 1, "input_length": 2, "output_length": 3}\n{"timestamp": 2\n', "jsonl",
         "e.jsonl:2: not valid JSON"),
        ("f.jsonl", '{"timestamp": 1, "input_length": 2}\n', "jsonl", "f.jsonl:1: field 'output_length' is missing"),
        ("g.jsonl", '{"timestamp": 1, "input_length": -2, "output_length": 3}\n', "jsonl",
         "g.jsonl:1: column 'input_length': -2 is not a token count"),
        ("h.csv", "window_start_s,rate_rps\n0,1\n0,2\n", "envelope", "h.csv:3: column 'window_start_s'"),
        ("i.csv", "window_start_s,rate_rps\n0,1\n60,-2\n", "envelope", "i.csv:3: column 'rate_rps': -2 is negative"),
        ("j.csv", "time,input_tokens,output_tokens\n", "csv", "j.csv: the trace has no requests"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, name: str, text: str, fmt: str, message: str) -> None:
    lengths = load_trace(bundled_trace_path())
    with pytest.raises(UserError) as error:
        load_trace(write(tmp_path, name, text), fmt, lengths=lengths)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_options_name_the_flag(tmp_path: Path) -> None:
    trace = load_trace(bundled_trace_path())
    for call, flag in ((lambda: compress(trace, 0), "--compress"), (lambda: scale_rate(trace, -1), "--scale"),
                       (lambda: truncate(trace, 0), "--duration"),
                       (lambda: load_trace(bundled_trace_path(), "parquet"), "--trace-format")):
        with pytest.raises(UserError, match=flag):
            call()
    with pytest.raises(UserError, match="not found"):
        load_trace(tmp_path / "missing.csv")


HOSTILE = {
    "not UTF-8 CSV": ("a.csv", b"time,input_tokens,output_tokens\n1,\xff\xfe,3\n", "csv", 2,
                      "a.csv: not UTF-8 text (byte 0xff)"),
    "not UTF-8 JSONL": ("b.jsonl", b'{"timestamp": 1, "input_length": 2, "output_length": 3}\n\xff\n', "jsonl", 2,
                        "b.jsonl: not UTF-8 text (byte 0xff)"),
    "CSV field beyond the csv module's limit": (
        "c.csv", b"time,input_tokens,output_tokens\n1," + b"7" * 200_000 + b",3\n", "csv", 2,
        "c.csv: malformed CSV: field larger than field limit"),
    "JSONL integer of 5000 digits": (
        "d.jsonl", b'{"timestamp": 1, "input_length": ' + b"9" * 5000 + b', "output_length": 3}\n', "jsonl", 2,
        "d.jsonl: unreadable: Exceeds the limit (4300 digits)"),
    "token count that overflows": ("e.csv", b"time,input_tokens,output_tokens\n1,1e308,3\n", "csv", 1,
                                   "e.csv:2: column 'input_tokens': 1e+308 is not a token count"),
    "arrivals spread over 1e308 s": ("f.csv", b"time,input_tokens,output_tokens\n1,2,3\n1e308,2,3\n", "csv", 1,
                                     "f.csv: the requests span 1e+308 s, more than the 604800 s (a week)"),
    "envelope of 1e8 req/s": ("g.csv", b"window_start_s,rate_rps\n0,1e8\n60,1e8\n", "envelope", 1,
                              "g.csv: the envelope expands to about 1.2e+10 requests (rate_rps x window length), "
                              "more than the 2000000 a trace may hold; lower rate_rps (the highest is 1e+08 req/s"),
    "envelope over 1e300 s": ("h.csv", b"window_start_s,rate_rps\n0,1\n1e300,1\n", "envelope", 1,
                              "h.csv: the windows span 2e+300 s, more than the 604800 s (a week)"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_traces_are_refused_with_one_line(tmp_path: Path, case: str) -> None:
    name, content, fmt, code, message = HOSTILE[case]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError) as error:
        load_trace(path, fmt, lengths=load_trace(bundled_trace_path()))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert error.value.exit_code == code


def test_rate_scaling_and_compression_are_bounded_too() -> None:
    trace = load_trace(bundled_trace_path())
    with pytest.raises(UserError, match=r"--scale: x1e\+09 makes about .* requests, more than the 2000000"):
        scale_rate(trace, 1e9)
    with pytest.raises(UserError, match=r"--compress: the requests span .* more than the 604800 s"):
        compress(trace, 1e-300)
    with pytest.raises(UserError, match="--scale: must be > 0 and finite"):
        scale_rate(trace, float("inf"))


def test_a_csv_longer_than_the_bound_is_refused_while_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("inferencefleet.sim.traces.MAX_REQUESTS", 10)
    path = write(tmp_path, "long.csv", "time,input_tokens,output_tokens\n" + "1,2,3\n" * 11)
    with pytest.raises(UserError, match=r"long\.csv: more than 10 rows, the most requests a trace may hold"):
        load_trace(path, "csv")
    assert len(load_trace(write(tmp_path, "ok.csv", "time,input_tokens,output_tokens\n" + "1,2,3\n" * 10)).requests) == 10
@pytest.mark.parametrize("name", ["t.jsonl.gz", "t.csv.gz"])
def test_gzip_compressed_traces_load_like_plain_ones(tmp_path: Path, name: str) -> None:
    if name.startswith("t.jsonl"):
        text = '{"timestamp": 1000, "input_length": 5, "output_length": 7}\n' \
               '{"timestamp": 3500, "input_length": 8, "output_length": 2}\n'
    else:
        text = "time,prompt_tokens,output_tokens\n1.0,5,7\n3.5,8,2\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()))
    trace = load_trace(path)
    assert [(r.arrival, r.prompt_tokens, r.output_tokens) for r in trace.requests] == [(0.0, 5, 7), (2.5, 8, 2)]


def test_a_corrupt_gzip_trace_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match=r"t\.jsonl\.gz: not a readable gzip file"):
        load_trace(path)
