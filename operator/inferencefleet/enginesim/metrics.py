"""vLLM's Prometheus metrics (V1 engine names, types, labels and bucket edges) on a private registry.

Names, labels and buckets follow ``vllm/v1/metrics/loggers.py`` as summarised in
``shared/reference/metrics-calibration-baselines.md`` section 2.1 (latency edges are shared with the
fleet simulator's histograms; queue time uses the e2e edges, as vLLM does). Every series carries
``model_name`` (the served model) and ``engine`` (engine index, "0"). Latencies are observed in
*model* seconds (measured wall time x time scale), so SLO comparisons do not depend on how fast a
test runs the simulator; counters count events, so their rates are per wall second.

The exposition negotiates the format from the scraper's Accept header exactly as vLLM's
``prometheus_client`` endpoint does; under OpenMetrics, recent clients spell ``vllm:x`` as
``vllm_x`` on sample lines (prometheus/client_python#1177), the same as a real vLLM pod.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from ..signals.buckets import E2E_EDGES, ITL_EDGES, TTFT_EDGES

ITERATION_TOKEN_BUCKETS: tuple[float, ...] = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
FINISH_REASONS = ("stop", "length", "abort")
LABELS = ("model_name", "engine")


class EngineMetrics:
    """The metrics of one simulated engine, bound to its ``model_name`` and ``engine`` labels."""

    def __init__(self, model_name: str, engine: str = "0") -> None:
        self.registry = CollectorRegistry()
        labels = (model_name, engine)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, LABELS, registry=self.registry).labels(*labels)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, LABELS, registry=self.registry).labels(*labels)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, LABELS, buckets=buckets, registry=self.registry).labels(*labels)

        self.running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.")
        self.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.")
        self.kv_cache_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.")
        success = Counter("vllm:request_success", "Count of successfully processed requests.",
                          (*LABELS, "finished_reason"), registry=self.registry)
        self.success = {reason: success.labels(*labels, reason) for reason in FINISH_REASONS}
        self.iteration_tokens = histogram("vllm:iteration_tokens_total",
                                          "Histogram of number of tokens per engine_step.", ITERATION_TOKEN_BUCKETS)
        self.ttft = histogram("vllm:time_to_first_token_seconds",
                              "Histogram of time to first token in seconds.", TTFT_EDGES)
        self.itl = histogram("vllm:inter_token_latency_seconds",
                             "Histogram of inter-token latency in seconds.", ITL_EDGES)
        self.e2e = histogram("vllm:e2e_request_latency_seconds",
                             "Histogram of e2e request latency in seconds.", E2E_EDGES)
        self.queue_time = histogram("vllm:request_queue_time_seconds",
                                    "Histogram of time spent in WAITING phase for request.", E2E_EDGES)

        self.lag = counter("engine_sim_lag_seconds",
                           "Wall seconds the engine simulator fell behind the capacity model (host too slow); "
                           "not a vLLM metric.")

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The scrape body and its content type for a scraper sending this Accept header."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
