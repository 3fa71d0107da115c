"""Request traces: per-request CSV / JSONL loaders, rate envelopes, time compression, rate scaling.

Formats (``auto`` picks by extension and header):
- ``csv``: one request per row; a header names a timestamp column (``TIMESTAMP``, ``timestamp``,
  ``arrival_time`` or ``time``: seconds, or an ISO date-time such as Azure's
  ``2023-11-16 18:15:46.6805900``), an input column (``ContextTokens``, ``input_length``,
  ``input_tokens``, ``prompt_tokens``) and an output column (``GeneratedTokens``, ``output_length``,
  ``output_tokens``, ``completion_tokens``). The Azure LLM inference traces load as they are.
- ``jsonl``: one JSON object per line with ``timestamp`` (milliseconds), ``input_length``,
  ``output_length`` and optionally ``hash_ids`` (ignored: no prefix-cache model yet).
Any of them may be gzip-compressed (a ``.gz`` suffix; ``auto`` looks at the suffix before it).
- ``envelope``: CSV ``window_start_s,rate_rps``; arrivals are Poisson at that rate within each
  window (the last window lasts as long as the one before it), lengths are drawn from a per-request
  trace; both seeded.
Timestamps are shifted so the first request arrives at 0. A file that cannot be read (not UTF-8,
malformed CSV) raises UserError, a bad value InvalidInput, naming the file, line and column. A trace
holds at most MAX_REQUESTS requests over at most MAX_SPAN_S seconds, after rate scaling and envelope
sampling too (an envelope of 1e8 req/s is refused before any request is drawn).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TextIO

from ..errors import InvalidInput, UserError, shown
from .replica import Request

FORMATS = ("auto", "csv", "jsonl", "envelope")
TIME_COLUMNS = ("timestamp", "arrival_time", "time")
INPUT_COLUMNS = ("contexttokens", "input_length", "input_tokens", "prompt_tokens")
OUTPUT_COLUMNS = ("generatedtokens", "output_length", "output_tokens", "completion_tokens")
ENVELOPE_COLUMNS = ("window_start_s", "rate_rps")
MAX_REQUESTS = 2_000_000
"""Most requests a trace may hold or expand to (about 250 MB of requests; hours of a busy fleet)."""
MAX_SPAN_S = 7 * 86400.0
"""Longest a trace may last from its first to its last arrival: a week."""
MAX_TOKENS = 10_000_000
"""Most tokens one request may read or write (ten times the largest context window)."""
BUNDLED_TRACE = "azure_llm_2023_conv_slice.csv"
"""14 minutes of the Azure 2023 conversation trace (CC-BY 4.0, see data/traces/ATTRIBUTION.md)."""


def bundled_trace_path() -> Path:
    """Path of the trace shipped inside the package."""
    return Path(str(resources.files("inferencefleet") / "data" / "traces" / BUNDLED_TRACE))


@dataclass(frozen=True)
class Trace:
    """Requests sorted by arrival (seconds from the first), and where they came from."""

    name: str
    requests: tuple[Request, ...]

    @property
    def duration(self) -> float:
        return self.requests[-1].arrival if self.requests else 0.0

    def window_rates(self, window: float) -> list[float]:
        """Arrivals per second in consecutive windows of ``window`` seconds."""
        counts = [0] * (int(self.duration // window) + 1)
        for request in self.requests:
            counts[int(request.arrival // window)] += 1
        return [c / window for c in counts]


def load_trace(path: str | Path, fmt: str = "auto", *, lengths: Trace | None = None, seed: int = 0) -> Trace:
    """Load a trace file; ``envelope`` needs ``lengths``, a per-request trace to draw lengths from."""
    path = Path(path)
    if fmt not in FORMATS:
        raise InvalidInput(f"--trace-format: {fmt!r} is not a trace format; allowed: {', '.join(FORMATS)}")
    if not path.is_file():
        raise UserError(f"{path}: trace file not found")
    try:
        if fmt == "auto":
            fmt = _detect(path)
        if fmt == "jsonl":
            requests = _read_jsonl(path)
        elif fmt == "csv":
            requests = _read_csv(path)
        else:
            if lengths is None or not lengths.requests:
                raise InvalidInput(f"{path}: an envelope trace needs a per-request trace to draw lengths from")
            requests = _sample_envelope(path, _read_envelope(path), lengths, seed)
    except (gzip.BadGzipFile, EOFError) as error:
        raise UserError(f"{path}: not a readable gzip file ({error})") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x})") from None
    except csv.Error as error:
        raise UserError(f"{path}: malformed CSV: {error}") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read: {error.strerror or error}") from None
    except (ValueError, RecursionError) as error:  # a JSON line nested too deeply or with a 5000-digit integer
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error).split(";")[0]
        raise UserError(f"{path}: unreadable: {reason}") from None
    if not requests:
        raise InvalidInput(f"{path}: the trace has no requests")
    return _bounded(Trace(path.name, _rebase(requests)), str(path))


def _bounded(trace: Trace, source: str) -> Trace:
    """``trace`` if it holds at most MAX_REQUESTS requests over at most MAX_SPAN_S seconds."""
    if len(trace.requests) > MAX_REQUESTS:
        raise InvalidInput(f"{source}: {len(trace.requests)} requests, more than the {MAX_REQUESTS} a trace may hold")
    if trace.duration > MAX_SPAN_S:
        raise InvalidInput(f"{source}: the requests span {trace.duration:.4g} s, more than the "
                           f"{MAX_SPAN_S:g} s (a week) a trace may last")
    return trace


def compress(trace: Trace, factor: float) -> Trace:
    """Divide every arrival time by ``factor`` (> 1 replays faster: more requests per second)."""
    if not (factor > 0 and math.isfinite(factor)):
        raise InvalidInput(f"--compress: must be > 0 and finite (got {factor})")
    requests = tuple(
        Request(r.id, r.arrival / factor, r.prompt_tokens, r.output_tokens) for r in trace.requests
    )
    return _bounded(Trace(trace.name if factor == 1 else f"{trace.name} compressed x{factor:g}", requests),
                    "--compress")


def scale_rate(trace: Trace, factor: float, seed: int = 0) -> Trace:
    """Multiply the arrival rate by ``factor`` keeping the timeline.

    Each request is kept floor(factor) times plus once more with probability frac(factor); every
    extra copy arrives up to 1 s later (uniform jitter), so bursts keep their 1-second shape. An
    extra copy is another user's request: it takes the lengths of a random request of the same
    minute, so the minute's length mix is kept but one long prompt does not become a burst of
    identical long prompts.
    """
    if not (factor > 0 and math.isfinite(factor)):
        raise InvalidInput(f"--scale: must be > 0 and finite (got {factor})")
    if len(trace.requests) * factor > MAX_REQUESTS:
        raise InvalidInput(f"--scale: x{factor:g} makes about {len(trace.requests) * factor:.3g} requests, more "
                           f"than the {MAX_REQUESTS} a trace may hold; at most x{MAX_REQUESTS / len(trace.requests):.3g} "
                           "for this trace (or shorten it with --duration)")
    scaled = shape_rate(trace, lambda _: factor, seed)
    return Trace(trace.name if factor == 1 else f"{trace.name} rate x{factor:g}", scaled.requests)


def shape_rate(trace: Trace, factor: Callable[[float], float], seed: int = 0) -> Trace:
    """Multiply the arrival rate at time t by ``factor(t)`` (>= 0), as ``scale_rate`` does with a constant."""
    rng = random.Random(seed)
    minutes: dict[int, list[Request]] = {}
    for r in trace.requests:
        minutes.setdefault(int(r.arrival // 60), []).append(r)
    out: list[Request] = []
    for r in trace.requests:
        wanted = factor(r.arrival)
        whole = int(wanted)
        copies = whole + (rng.random() < wanted - whole)
        if copies:
            out.append(r)
        neighbours = minutes[int(r.arrival // 60)]
        for copy in range(1, copies):
            shape = neighbours[rng.randrange(len(neighbours))]
            out.append(Request(f"{r.id}.{copy}", r.arrival + rng.random(), shape.prompt_tokens, shape.output_tokens))
    out.sort(key=lambda r: r.arrival)
    return Trace(trace.name, tuple(out))


def tile(trace: Trace, seconds: float) -> Trace:
    """The trace repeated back to back until ``seconds``: copy k arrives k x its duration later."""
    period = trace.duration + 1.0
    copies = math.ceil(seconds / period)
    requests = tuple(
        Request(f"{r.id}@{k}" if k else r.id, r.arrival + k * period, r.prompt_tokens, r.output_tokens)
        for k in range(copies) for r in trace.requests if r.arrival + k * period < seconds
    )
    return Trace(trace.name, requests)


def truncate(trace: Trace, seconds: float) -> Trace:
    """The requests arriving in the first ``seconds``."""
    if not seconds > 0:
        raise InvalidInput(f"--duration: must be > 0 seconds (got {seconds})")
    return Trace(trace.name, tuple(r for r in trace.requests if r.arrival < seconds))


# ---------------------------------------------------------------------------- parsing
def _open(path: Path) -> TextIO:
    """The file as text, decompressed when its name ends in ``.gz``."""
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", newline="", encoding="utf-8")
    return path.open(newline="", encoding="utf-8")


def _detect(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".gz"]:
        suffixes.pop()
    if suffixes[-1:] in ([".jsonl"], [".ndjson"]):
        return "jsonl"
    header = [h.lower() for h in _header(path)]
    if header and header[0].startswith("{"):
        return "jsonl"
    return "envelope" if tuple(header[:2]) == ENVELOPE_COLUMNS else "csv"


def _rebase(requests: list[Request]) -> tuple[Request, ...]:
    requests.sort(key=lambda r: r.arrival)
    start = requests[0].arrival
    return tuple(Request(r.id, r.arrival - start, r.prompt_tokens, r.output_tokens) for r in requests)


def _header(path: Path) -> list[str]:
    with _open(path) as handle:
        return [h.strip() for h in next(csv.reader(handle), [])]


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row keyed by column name) of a CSV file with a header."""
    with _open(path) as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        for row in reader:
            if reader.line_num > MAX_REQUESTS + 1:
                raise InvalidInput(f"{path}: more than {MAX_REQUESTS} rows, the most requests a trace may hold")
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise InvalidInput(
                    f"{path}:{reader.line_num}: has {len(row)} columns, the header has {len(header)}"
                )
            yield reader.line_num, dict(zip(header, (c.strip() for c in row), strict=True))


def _column(path: Path, header: list[str], names: tuple[str, ...], what: str) -> str:
    """The header's spelling of the first of ``names`` it has (case-insensitive)."""
    found = next((h for n in names for h in header if h.lower() == n), None)
    if found is None:
        raise InvalidInput(
            f"{path}:1: no {what} column; the header has {', '.join(header) or 'nothing'}, "
            f"allowed names: {', '.join(names)} (any case)"
        )
    return found


def _read_csv(path: Path) -> list[Request]:
    header = _header(path)
    time_col = _column(path, header, TIME_COLUMNS, "timestamp")
    in_col = _column(path, header, INPUT_COLUMNS, "input-token")
    out_col = _column(path, header, OUTPUT_COLUMNS, "output-token")
    requests = []
    for line, row in _rows(path):
        where = f"{path}:{line}"
        requests.append(Request(
            line - 1,
            _seconds(row[time_col], where, time_col),
            _tokens(row[in_col], where, in_col),
            _tokens(row[out_col], where, out_col),
        ))
    return requests


def _read_jsonl(path: Path) -> list[Request]:
    requests = []
    with _open(path) as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = f"{path}:{line}"
            try:
                record = json.loads(text)
            except json.JSONDecodeError as error:
                raise UserError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
            if not isinstance(record, dict):
                raise InvalidInput(f"{where}: expected a JSON object with timestamp, input_length, output_length")
            for key in ("timestamp", "input_length", "output_length"):
                if key not in record:
                    raise InvalidInput(f"{where}: field {key!r} is missing (required: timestamp in ms, "
                                    "input_length, output_length)")
            millis = record["timestamp"]
            if isinstance(millis, bool) or not isinstance(millis, int | float) or not math.isfinite(millis):
                raise InvalidInput(f"{where}: field 'timestamp': {millis!r} is not a number of milliseconds")
            requests.append(Request(
                line,
                millis / 1000.0,
                _tokens(record["input_length"], where, "input_length"),
                _tokens(record["output_length"], where, "output_length"),
            ))
    return requests


def _read_envelope(path: Path) -> list[tuple[float, float]]:
    header = _header(path)
    start_col, rate_col = (_column(path, header, (name,), name) for name in ENVELOPE_COLUMNS)
    windows: list[tuple[float, float]] = []
    for line, row in _rows(path):
        where = f"{path}:{line}"
        start = _number(row[start_col], where, start_col)
        rate = _number(row[rate_col], where, rate_col)
        if rate < 0:
            raise InvalidInput(f"{where}: column 'rate_rps': {rate:g} is negative (allowed: >= 0 requests/s)")
        if windows and start <= windows[-1][0]:
            raise InvalidInput(f"{where}: column 'window_start_s': {start:g} does not increase "
                            f"(previous window starts at {windows[-1][0]:g})")
        windows.append((start, rate))
    if len(windows) < 2:
        raise InvalidInput(f"{path}: an envelope needs at least 2 windows (window_start_s,rate_rps rows)")
    return windows


def _sample_envelope(path: Path, windows: list[tuple[float, float]], lengths: Trace, seed: int) -> list[Request]:
    """Poisson arrivals at each window's rate, lengths drawn from ``lengths``; an envelope expecting more
    than MAX_REQUESTS requests or lasting more than MAX_SPAN_S is refused before any is drawn."""
    rng = random.Random(seed)
    ends = [w[0] for w in windows[1:]] + [2 * windows[-1][0] - windows[-2][0]]
    span = ends[-1] - windows[0][0]
    if span > MAX_SPAN_S:
        raise InvalidInput(f"{path}: the windows span {span:.4g} s, more than the {MAX_SPAN_S:g} s (a week) "
                           "a trace may last")
    expected = sum(rate * (end - start) for (start, rate), end in zip(windows, ends, strict=True))
    if expected > MAX_REQUESTS:
        busiest = max(windows, key=lambda w: w[1])
        raise InvalidInput(
            f"{path}: the envelope expands to about {expected:.3g} requests (rate_rps x window length), more "
            f"than the {MAX_REQUESTS} a trace may hold; lower rate_rps (the highest is {busiest[1]:g} req/s "
            f"from {busiest[0]:g} s) or shorten the windows")
    requests: list[Request] = []
    for (start, rate), end in zip(windows, ends, strict=True):
        t = start
        while rate > 0:
            t += rng.expovariate(rate)
            if t >= end:
                break
            source = lengths.requests[rng.randrange(len(lengths.requests))]
            requests.append(Request(len(requests), t, source.prompt_tokens, source.output_tokens))
    return requests


def _seconds(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        try:
            return _parse_datetime(text).timestamp()
        except ValueError:
            raise InvalidInput(
                f"{where}: column {column!r}: {shown(text)} is neither seconds nor a date-time "
                "(allowed: 12.5 or 2023-11-16 18:15:46.6805900)"
            ) from None
    if not math.isfinite(value):
        raise InvalidInput(f"{where}: column {column!r}: {shown(text)} is not a finite number of seconds")
    return value


def _parse_datetime(text: str) -> datetime:
    """ISO date-time; fractions longer than microseconds (Azure writes 7 digits) are cut to 6."""
    head, dot, frac = text.partition(".")
    if dot:
        digits = "".join(c for c in frac if c.isdigit())
        text = f"{head}.{digits[:6]}{frac[len(digits):]}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _number(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"{where}: column {column!r}: {shown(text)} is not a number") from None
    if not math.isfinite(value):
        raise InvalidInput(f"{where}: column {column!r}: {shown(text)} is not finite")
    return value


def _tokens(value: object, where: str, column: str) -> int:
    """A token count >= 1 (0 becomes 1: every request reads and writes at least one token)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or not float(value).is_integer() or not 0 <= value <= MAX_TOKENS):
        raise InvalidInput(f"{where}: column {column!r}: {shown(value)} is not a token count "
                           f"(allowed: an integer from 0 to {MAX_TOKENS})")
    return max(int(value), 1)
