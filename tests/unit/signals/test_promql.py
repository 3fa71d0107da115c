"""PromQL templates: one query per signal for any number of pools, escaping, engine variants."""

from __future__ import annotations

import re

import pytest

from inferencefleet.signals import promql
from inferencefleet.signals.model import ACCOUNTING_NAMES, SIGNAL_NAMES


def test_one_template_per_signal_in_order() -> None:
    assert tuple(s.name for s in promql.signals()) == (*SIGNAL_NAMES, *ACCOUNTING_NAMES)


def test_every_query_groups_by_namespace_and_pool_and_names_no_pool() -> None:
    for signal in promql.signals():
        text = promql.query(signal)
        assert "by (namespace, inferencefleet_io_pool)" in text or "by (le, namespace, inferencefleet_io_pool)" in text
        assert "inferencefleet_io_pool=\"" not in text  # pools are grouped, never listed one by one


@pytest.mark.parametrize("value, literal", [
    ('a"b', r'"a\"b"'),
    ("a\\b", r'"a\\b"'),
    ("line\nbreak", r'"line\nbreak"'),
    ('x"} or up{a="', r'"x\"} or up{a=\""'),
])
def test_escape(value: str, literal: str) -> None:
    assert promql.escape(value) == literal


def test_hostile_namespace_stays_inside_its_string() -> None:
    hostile = 'x"} or vector(1) or up{a="'
    text = promql.query(promql.signals()[0], namespace=hostile)
    assert text.count(promql.escape(hostile)) == text.count("namespace=")
    assert "or vector(1)" not in text.replace(promql.escape(hostile), "")


def test_vllm_names_are_queried_with_both_spellings_and_old_names() -> None:
    by_name = {s.name: promql.query(s) for s in promql.signals()}
    for spelled in ("vllm:kv_cache_usage_perc", "vllm_kv_cache_usage_perc", "vllm:gpu_cache_usage_perc",
                    "vllm_gpu_cache_usage_perc", "trtllm_kv_cache_utilization"):
        assert f"{spelled}{{" in by_name["kv_cache_usage"]
    for spelled in ("vllm:inter_token_latency_seconds_bucket", "vllm_time_per_output_token_seconds_bucket",
                    "trtllm_time_per_output_token_seconds_bucket"):
        assert f"{spelled}{{" in by_name["itl_p99"]


def test_engines_are_joined_per_pool_so_one_wins() -> None:
    text = promql.query(next(s for s in promql.signals() if s.name == "request_rate"))
    assert text.count(" or on(namespace, inferencefleet_io_pool) ") == 2  # vLLM, trtllm-serve, Triton
    assert set(re.findall(r'"inferencefleet_engine", "([a-z-]+)"', text)) == {"vllm", "trtllm-serve", "triton"}


def test_window_and_quantiles_are_configurable() -> None:
    signals = promql.signals(quantiles=(0.4, 0.95))
    ttft_p99 = promql.query(next(s for s in signals if s.name == "ttft_p99"), window=30)
    assert "histogram_quantile(0.95," in ttft_p99 and "[30s]" in ttft_p99 and "[1m]" not in ttft_p99
    assert "[1500ms]" in promql.query(signals[0], window=1.5)
    assert "[2m]" in promql.query(signals[0], window=120)


@pytest.mark.parametrize("quantiles", [(0.0, 0.99), (0.5, 1.0), (-1, 0.5)])
def test_bad_quantile_is_refused(quantiles: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        promql.signals(quantiles)


def test_bad_window_is_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        promql.query(promql.signals()[0], window=0)


def test_triton_reasons() -> None:
    by_name = {s.name: s for s in promql.signals()}
    assert by_name["running"].reason_unavailable("triton") is None
    assert by_name["ready_replicas"].reason_unavailable("triton") is None
    assert "token counters" in (by_name["output_tokens_per_second"].reason_unavailable("triton") or "")
    assert by_name["itl_p99"].reason_unavailable("sglang") == "sglang exports no metric for itl_p99"



def test_scraped_replicas_counts_the_pods_holding_each_engines_request_gauge() -> None:
    scraped = next(s for s in promql.signals() if s.name == "scraped_replicas")
    text = promql.query(scraped)
    assert text.count("count by (namespace, inferencefleet_io_pool) (max by (namespace, inferencefleet_io_pool, pod)") == 3
    for gauge in ("vllm:num_requests_running", "vllm_num_requests_running", "trtllm_num_requests_running",
                  'nv_trt_llm_request_metrics{inferencefleet_io_pool!="", request_type="active"}'):
        assert gauge in text
    assert scraped.reason_unavailable("triton") is None
