"""Token timing follows the capacity model's step time at the time scale, on the server's own clock."""

from __future__ import annotations

import asyncio
import statistics
from itertools import pairwise

import pytest

from inferencefleet.planner.capacity import named_profile

from .conftest import sse_events

PROFILE = "llama3-70b-h100-tp4"  # ~22 ms steps: measurable at both time scales


@pytest.mark.parametrize("time_scale", [1.0, 4.0])
async def test_token_gaps_follow_step_time_over_time_scale(start_engine, time_scale):
    client = await start_engine(PROFILE, time_scale=time_scale)
    prompt, output = 1500, 30
    response = await client.post("/v1/completions", json={
        "prompt": "hi", "max_tokens": output, "stream": True, "sim": {"prompt_tokens": prompt}})
    events = sse_events(await response.text())
    timeline = await (await client.get(f"/sim/requests/{events[0]['id']}")).json()
    assert timeline["time_scale"] == time_scale
    times = timeline["token_times"]
    assert len(times) == output

    profile = named_profile(PROFILE)
    # A lone sequence: prefill of the whole prompt, then decode steps holding prompt + emitted tokens.
    expected_gaps = [profile.step_time(1, prompt + 1 + k) / time_scale for k in range(output - 1)]
    measured_gaps = [b - a for a, b in pairwise(times)]
    ratios = [m / e for m, e in zip(measured_gaps, expected_gaps, strict=True)]
    assert 0.85 <= statistics.median(ratios) <= 1.25, ratios
    assert 0.9 <= sum(measured_gaps) / sum(expected_gaps) <= 1.3

    ttft_ratio = (times[0] - timeline["arrival"]) / (profile.step_time(0, 0, prompt) / time_scale)
    assert 0.8 <= ttft_ratio <= 1.6, ttft_ratio


async def test_batching_slows_each_step_as_the_model_says(start_engine):
    """64 concurrent sequences decode in steps of step_time(64, ...), slower than a lone sequence's."""
    client = await start_engine("mixtral-8x7b-h100-tp2ep2", time_scale=2.0)
    output = 20
    bodies = await asyncio.gather(*(
        client.post("/v1/completions", json={"prompt": "hi", "max_tokens": output, "sim": {"prompt_tokens": 16}})
        for _ in range(64)
    ))
    ids = [(await b.json())["id"] for b in bodies]
    timelines = [await (await client.get(f"/sim/requests/{i}")).json() for i in ids]
    gaps = [b - a for t in timelines for a, b in pairwise(t["token_times"][1:])]
    profile = named_profile("mixtral-8x7b-h100-tp2ep2")
    expected = profile.step_time(64, 64 * (16 + output // 2)) / 2.0
    assert profile.step_time(64, 64 * 16) > 1.5 * profile.step_time(1, 16)  # the model's MoE batch penalty
    assert 0.85 <= statistics.median(gaps) / expected <= 1.25
