"""Scenario families: seeded, shaped as documented."""

from __future__ import annotations

import statistics

import pytest

from inferencefleet.sim.scenarios import diurnal, long_context, ramp, step
from inferencefleet.sim.traces import bundled_trace_path, load_trace


def test_long_context_prompts_and_batched_arrivals():
    trace = long_context(1800, 5.0, seed=4, median_prompt=6000, p99_prompt=28_000, batch_every=4.0)
    prompts = sorted(r.prompt_tokens for r in trace.requests)
    assert statistics.median(prompts) == pytest.approx(6000, rel=0.05)
    assert prompts[int(0.99 * len(prompts))] == pytest.approx(28_000, rel=0.1)
    assert all(r.prompt_tokens + r.output_tokens <= 32_768 for r in trace.requests)
    assert {r.arrival % 4.0 for r in trace.requests} == {0.0}  # every request arrives with its batch
    assert len(trace.requests) / 1800 == pytest.approx(5.0, rel=0.05)
    assert long_context(1800, 5.0, seed=4).requests == trace.requests


def test_diurnal_peaks_in_the_middle_and_troughs_at_the_ends():
    lengths = load_trace(bundled_trace_path())
    trace = diurnal(3600, 20.0, lengths, seed=1, trough_share=0.3)
    rates = trace.window_rates(600)
    assert rates[0] == pytest.approx(20 * 0.35, rel=0.15) and max(rates) == pytest.approx(rates[2], rel=0.05)
    assert max(rates) > 2.5 * rates[0]


def test_step_and_ramp_reach_the_peak_from_the_low_share():
    lengths = load_trace(bundled_trace_path())
    jump = step(900, 10.0, lengths, seed=2, low_share=0.45, at=300).window_rates(300)
    assert jump[0] == pytest.approx(4.5, rel=0.1) and jump[1] == pytest.approx(10, rel=0.1)
    rising = ramp(1500, 10.0, lengths, seed=2, low_share=0.45, at=300, ramp=600).window_rates(300)
    assert rising[0] < rising[1] < rising[2] < rising[3] and rising[3] == pytest.approx(10, rel=0.1)
