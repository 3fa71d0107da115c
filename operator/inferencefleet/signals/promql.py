"""PromQL for every signal of every pool: one query per signal, grouped by namespace and pool (pure).

Each signal is an ``or`` over engines. Inside one engine, the metric's spellings (vLLM's new and
old names, ``vllm:`` and the ``vllm_`` escaping of prometheus_client >= 0.23) are joined with a
per-series ``or``, so a pod exporting two spellings counts once and a pool in a rolling upgrade
counts every pod. Across engines, ``or on(namespace, inferencefleet_io_pool)`` lets exactly one
engine answer per pool; its name is added as the ``inferencefleet_engine`` label.

DCGM GPU series (accounting only) carry ``namespace`` and ``pod`` (dcgm-exporter's Kubernetes pod
mapper, scraped with ``honorLabels``) but no pool label: they are joined to pools through the pods
of the pool's scrape targets (``up``), so only GPUs of scraped pods (LWS leaders, not workers) count.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from inferencefleet.api.durations import format_duration

POOL_LABEL = "inferencefleet_io_pool"
NAMESPACE_LABEL = "namespace"
ENGINE_LABEL = "inferencefleet_engine"
GROUP = f"{NAMESPACE_LABEL}, {POOL_LABEL}"
FRESHNESS = "freshness"
"""Name of the extra query giving each pool's last scrape time (staleness check)."""

Engine = Literal["vllm", "trtllm-serve", "triton"]
ENGINES: tuple[Engine, ...] = ("vllm", "trtllm-serve", "triton")
Kind = Literal["rate", "sum", "avg", "quantile", "targets", "pods"]


@dataclass(frozen=True)
class Source:
    """Where one engine exports a signal: metric names (first wins per series), extra matchers, unit scale."""

    engine: Engine | None
    """The engine exporting it; None for engine-independent series such as ``up``."""
    names: tuple[str, ...]
    matchers: str = ""
    scale: float = 1.0
    """Factor to the signal's unit, e.g. 0.001 for a histogram in milliseconds."""
    by_pod: bool = False
    """The series have ``pod`` but no pool label (DCGM): joined to pools through their targets' pods."""


@dataclass(frozen=True)
class Signal:
    """One signal: how to aggregate it and which engines export it (or why one cannot)."""

    name: str
    kind: Kind
    sources: tuple[Source, ...]
    quantile: float | None = None
    unavailable: dict[str, str] = field(default_factory=dict)
    """Engine -> why it exports nothing for this signal."""
    no_series: str = "no series for this pool (not scraped, or no samples in the window)"
    """Why a pool has no value when its engine does export the signal."""

    def reason_unavailable(self, engine: str) -> str | None:
        """Why ``engine`` cannot provide this signal, or None if it can."""
        if any(s.engine in (engine, None) for s in self.sources):
            return None
        return self.unavailable.get(engine, f"{engine} exports no metric for {self.name}")


def spellings(name: str) -> tuple[str, ...]:
    """A metric name and, for ``vllm:`` names, the ``vllm_`` escaping newer prometheus_client scrapes as."""
    return (name, name.replace(":", "_")) if ":" in name else (name,)


def escape(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal: quotes, backslashes and newlines escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def selector(namespace: str | None = None, extra: str = "", label: str = POOL_LABEL) -> str:
    """Label matchers of series with a non-empty ``label``, optionally in one namespace (escaped), plus ``extra``."""
    parts = [f'{label}!=""']
    if namespace is not None:
        parts.append(f"{NAMESPACE_LABEL}={escape(namespace)}")
    if extra:
        parts.append(extra)
    return "{" + ", ".join(parts) + "}"


def _series(source: Source, suffix: str, namespace: str | None, window: str | None) -> str:
    """The per-series ``or`` of every spelling of ``source`` (rated over ``window`` when given)."""
    terms = []
    for name in source.names:
        for spelled in spellings(name):
            vector = f"{spelled}{suffix}{selector(namespace, source.matchers, 'pod' if source.by_pod else POOL_LABEL)}"
            if source.by_pod:
                pods = f"group by ({GROUP}, pod) (up{selector(namespace)})"
                vector = f"({vector} * on({NAMESPACE_LABEL}, pod) group_left({POOL_LABEL}) {pods})"
            terms.append(f"rate({vector}[{window}])" if window else vector)
    return " or ".join(terms)


def _aggregate(signal: Signal, source: Source, namespace: str | None, window: str) -> str:
    """One engine's expression for ``signal``, aggregated to one value per pool, in the signal's unit."""
    if signal.kind == "quantile":
        buckets = _series(source, "_bucket", namespace, window)
        expr = f"histogram_quantile({signal.quantile}, sum by (le, {GROUP}) ({buckets}))"
    elif signal.kind == "rate":
        expr = f"sum by ({GROUP}) ({_series(source, '', namespace, window)})"
    elif signal.kind == "targets":
        expr = f"sum by ({GROUP}) (max by ({GROUP}, pod) ({_series(source, '', namespace, None)}))"
    elif signal.kind == "pods":
        expr = f"count by ({GROUP}) (max by ({GROUP}, pod) ({_series(source, '', namespace, None)}))"
    else:
        expr = f"{signal.kind} by ({GROUP}) ({_series(source, '', namespace, None)})"
    if source.scale != 1.0:
        expr = f"({expr}) * {source.scale:g}"
    if source.engine is None:
        return expr
    return f'label_replace({expr}, "{ENGINE_LABEL}", "{source.engine}", "", "")'


def query(signal: Signal, namespace: str | None = None, window: float = 60.0) -> str:
    """The single PromQL query giving ``signal`` for every pool (in ``namespace`` if given)."""
    if window <= 0:
        raise ValueError(f"window {window:g}s must be positive, e.g. 60 (1m)")
    text = format_duration(window)
    text = f"{round(window * 1000)}ms" if "." in text else text  # PromQL durations have no fractions
    terms = [_aggregate(signal, source, namespace, text) for source in signal.sources]
    return f" or on({GROUP}) ".join(terms)


def in_flight_query(namespace: str, pool: str) -> str:
    """Requests running plus waiting on each pod of one pool, by ``pod`` (which replicas a scale-in removes)."""
    by_name = {s.name: s for s in signals()}
    only = f"{POOL_LABEL}={escape(pool)}"
    gauges = []
    for name in ("running", "waiting"):
        sources = [replace(s, matchers=", ".join(filter(None, (s.matchers, only)))) for s in by_name[name].sources]
        gauges.append(" or ".join(f"sum by (pod) ({_series(s, '', namespace, None)})" for s in sources))
    return f"({gauges[0]}) + ({gauges[1]})"


def freshness_query(namespace: str | None = None) -> str:
    """Each pool's latest scrape time (Unix seconds), to tell stale values from live ones."""
    return f"max by ({GROUP}) (timestamp(up{selector(namespace)}))"


NO_TOKENS = "Triton exports no token counters (trtllm-serve does)"
NO_ITL = "Triton exports no inter-token latency histogram (trtllm-serve does)"
NO_E2E = "Triton exports request latency only as per-pod summaries, which do not aggregate to a pool quantile"
NO_DCGM = ("no DCGM series for this pool's pods (optional: dcgm-exporter with its Kubernetes pod mapper, "
           "scraped with honorLabels)")


def signals(quantiles: tuple[float, float] = (0.5, 0.99)) -> tuple[Signal, ...]:
    """Every signal of ``SIGNAL_NAMES`` then ``ACCOUNTING_NAMES``, in that order; ``quantiles`` are the (p50, p99) levels."""
    p50, p99 = quantiles
    for level in quantiles:
        if not 0 < level < 1:
            raise ValueError(f"quantile {level:g} is out of range: allowed are levels strictly between 0 and 1")
    ttft = (
        Source("vllm", ("vllm:time_to_first_token_seconds",)),
        Source("trtllm-serve", ("trtllm_time_to_first_token_seconds",)),
        Source("triton", ("nv_inference_first_response_histogram_ms",), scale=0.001),
    )
    itl = (
        Source("vllm", ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds")),
        Source("trtllm-serve", ("trtllm_time_per_output_token_seconds",)),
    )
    e2e = (
        Source("vllm", ("vllm:e2e_request_latency_seconds",)),
        Source("trtllm-serve", ("trtllm_e2e_request_latency_seconds",)),
    )
    running = (
        Source("vllm", ("vllm:num_requests_running",)),
        Source("trtllm-serve", ("trtllm_num_requests_running",)),
        Source("triton", ("nv_trt_llm_request_metrics",), matchers='request_type="active"'),
    )
    return (
        Signal("request_rate", "rate", (
            Source("vllm", ("vllm:request_success_total",)),
            Source("trtllm-serve", ("trtllm_request_success_total",)),
            Source("triton", ("nv_inference_request_success",)),
        )),
        Signal("prompt_tokens_per_second", "rate", (
            Source("vllm", ("vllm:prompt_tokens_total",)),
            Source("trtllm-serve", ("trtllm_prompt_tokens_total",)),
        ), unavailable={"triton": NO_TOKENS}),
        Signal("output_tokens_per_second", "rate", (
            Source("vllm", ("vllm:generation_tokens_total",)),
            Source("trtllm-serve", ("trtllm_generation_tokens_total",)),
        ), unavailable={"triton": NO_TOKENS}),
        Signal("running", "sum", running),
        Signal("waiting", "sum", (
            Source("vllm", ("vllm:num_requests_waiting",)),
            Source("trtllm-serve", ("trtllm_num_requests_waiting",)),
            Source("triton", ("nv_trt_llm_request_metrics",), matchers='request_type="waiting"'),
        )),
        Signal("kv_cache_usage", "avg", (
            Source("vllm", ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")),
            Source("trtllm-serve", ("trtllm_kv_cache_utilization",)),
            Source("triton", ("nv_trt_llm_kv_cache_block_metrics",), matchers='kv_cache_block_type="fraction"'),
        )),
        Signal("ttft_p50", "quantile", ttft, quantile=p50),
        Signal("ttft_p99", "quantile", ttft, quantile=p99),
        Signal("itl_p50", "quantile", itl, quantile=p50, unavailable={"triton": NO_ITL}),
        Signal("itl_p99", "quantile", itl, quantile=p99, unavailable={"triton": NO_ITL}),
        Signal("e2e_p99", "quantile", e2e, quantile=p99, unavailable={"triton": NO_E2E}),
        Signal("ready_replicas", "targets", (Source(None, ("up",)),)),
        Signal("scraped_replicas", "pods", running),
        Signal("gpu_power_watts", "sum", (Source(None, ("DCGM_FI_DEV_POWER_USAGE",), by_pod=True),),
               no_series=NO_DCGM),
        Signal("gpu_utilization", "avg", (Source(None, ("DCGM_FI_DEV_GPU_UTIL",), scale=0.01, by_pod=True),),
               no_series=NO_DCGM),
    )
