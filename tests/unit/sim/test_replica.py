"""Replica behaviour: batching limits, KV-cache admission, chunked prefill, fast path, Little's law."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from inferencefleet.sim.replica import Replica, Request


def poisson(rate: float, n: int, seed: int = 7) -> list[Request]:
    rng, t, out = random.Random(seed), 0.0, []
    for i in range(n):
        t += rng.expovariate(rate)
        out.append(Request(i, t, rng.randint(20, 2000), rng.randint(1, 300)))
    return out


def run_all_stepwise(replica: Replica) -> list:
    outcomes = []
    while (outcome := replica.step()) is not None:
        outcomes.append(outcome)
    return outcomes


def test_running_batch_never_exceeds_max_num_seqs(profile: Any) -> None:
    replica = Replica(profile, max_num_seqs=4, max_num_batched_tokens=8192)
    for i in range(10):
        replica.submit(Request(i, 0.0, 100, 50))
    peak = 0
    while (outcome := replica.step()) is not None:
        peak = max(peak, replica.num_running, len(outcome.decoded))
        assert replica.num_running + replica.num_waiting + len(replica.finished) == 10
    assert peak == 4
    assert len(replica.take_finished()) == 10


def test_kv_cache_reservation_limits_admission(make_profile: Any) -> None:
    # room for exactly two requests of 600 + 400 tokens
    replica = Replica(make_profile(kv_cache_tokens=2500), max_num_seqs=64, max_num_batched_tokens=8192)
    for i in range(3):
        assert replica.submit(Request(i, 0.0, 600, 400))
    replica.step()
    assert replica.num_running == 2 and replica.num_waiting == 1
    assert replica.kv_usage <= 1.0
    replica.advance(math.inf)
    done = replica.take_finished()
    assert [c.request.id for c in done][-1] == 2
    assert done[-1].scheduled >= min(c.finished for c in done[:2])


def test_request_larger_than_kv_cache_is_rejected(make_profile: Any) -> None:
    replica = Replica(make_profile(kv_cache_tokens=1000), max_num_seqs=8, max_num_batched_tokens=512)
    assert not replica.submit(Request(0, 0.0, 900, 200))
    assert replica.stats.requests_rejected == 1 and replica.idle


def test_chunked_prefill_respects_token_budget(profile: Any) -> None:
    replica = Replica(profile, max_num_seqs=8, max_num_batched_tokens=1000)
    replica.submit(Request("long", 0.0, 2500, 3))
    replica.submit(Request("short", 0.0, 100, 3))
    outcomes = run_all_stepwise(replica)
    # 2500 tokens take three 1000-token chunks; the short prompt shares the third step's leftover budget
    assert [len(o.first_tokens) for o in outcomes[:3]] == [0, 0, 2]
    assert replica.stats.prompt_tokens == 2600
    for o in outcomes:
        assert o.duration <= profile.step_time(len(o.decoded), 10**6, 1000)
    first_step = profile.step_time(0, 0, 1000)
    assert outcomes[0].duration == pytest.approx(first_step)


def test_decode_emits_one_token_per_step_and_ttft_is_prefill_end(profile: Any) -> None:
    replica = Replica(profile, max_num_seqs=8, max_num_batched_tokens=8192)
    replica.submit(Request(0, 1.0, 1000, 5))
    outcomes = run_all_stepwise(replica)
    assert len(outcomes) == 5  # prefill step emits token 1, then 4 decode steps
    (done,) = replica.take_finished()
    assert done.ttft == pytest.approx(profile.step_time(0, 0, 1000))
    assert done.e2e == pytest.approx(sum(o.duration for o in outcomes))
    assert replica.stats.generation_tokens == 5 and replica.stats.itl.count == 4


@pytest.mark.parametrize("budget", [2048, 300])  # 300: long prompts run many full-chunk steps
def test_fast_path_matches_step_by_step(profile: Any, budget: int) -> None:
    requests = poisson(rate=6.0 if budget > 1000 else 3.0, n=600)

    def simulate(stepwise: bool) -> tuple[Replica, dict]:
        replica = Replica(profile, max_num_seqs=32, max_num_batched_tokens=budget, itl_slo=0.0075)
        for request in requests:
            if stepwise:
                while not replica.idle and replica.clock < request.arrival:
                    replica.step()
            replica.submit(request)
        if stepwise:
            run_all_stepwise(replica)
        else:
            replica.advance(math.inf)
        return replica, {c.request.id: c for c in replica.take_finished()}

    fast, fast_done = simulate(False)
    slow, slow_done = simulate(True)
    assert fast_done.keys() == slow_done.keys() and len(fast_done) == len(requests)
    for key, c in fast_done.items():
        assert c.finished == pytest.approx(slow_done[key].finished, abs=1e-9)
        assert c.first_token == pytest.approx(slow_done[key].first_token, abs=1e-9)
        assert c.slow_gaps == slow_done[key].slow_gaps
    assert fast.stats.itl.counts == slow.stats.itl.counts
    assert fast.stats.steps == slow.stats.steps
    assert any(c.slow_gaps for c in fast_done.values())


def test_littles_law_on_steady_poisson_load(profile: Any) -> None:
    rate, requests = 8.0, poisson(rate=8.0, n=4000, seed=3)
    replica = Replica(profile, max_num_seqs=256, max_num_batched_tokens=8192)
    horizon = requests[-1].arrival
    samples, probe, dt = [], 0.0, 0.05
    pending = iter(requests)
    nxt = next(pending, None)
    while probe < horizon:
        while nxt is not None and nxt.arrival <= probe:
            replica.submit(nxt)
            nxt = next(pending, None)
        replica.advance(probe)
        samples.append(replica.outstanding)
        probe += dt
    replica.advance(math.inf)
    done = replica.take_finished()
    mean_in_system = sum(samples) / len(samples)
    mean_e2e = sum(c.e2e for c in done) / len(done)
    measured_rate = len(requests) / horizon
    assert measured_rate == pytest.approx(rate, rel=0.05)
    assert mean_in_system == pytest.approx(measured_rate * mean_e2e, rel=0.05)


def test_abort_frees_the_batch_slot_and_kv_reservation(make_profile: Any) -> None:
    # KV room for two requests of 600 + 400 tokens, batch of two: the third waits
    replica = Replica(make_profile(kv_cache_tokens=2000), max_num_seqs=2, max_num_batched_tokens=8192)
    for i in range(4):
        replica.submit(Request(i, 0.0, 600, 400))
    replica.step()  # prefills 0 and 1
    replica.step()  # both decode
    assert replica.num_running == 2 and replica.num_waiting == 2
    usage = replica.kv_usage
    assert replica.abort(0)  # decoding
    assert replica.num_running == 1 and replica.kv_usage < usage and replica.outstanding == 3
    outcome = replica.step()  # the freed slot and reservation admit request 2 at once
    assert outcome is not None and [r.id for r in outcome.first_tokens] == [2]
    assert replica.abort(3)  # waiting
    assert not replica.abort(3) and not replica.abort("unknown")
    replica.advance(math.inf)
    assert sorted(c.request.id for c in replica.take_finished()) == [1, 2]
    assert replica.idle and replica.outstanding == 0 and replica.kv_usage == 0
    # nothing stays reserved: a request needing the whole cache is admitted at once
    assert replica.submit(Request(9, replica.clock, 1000, 1000))
    assert replica.step() is not None and replica.num_running == 1


def test_abort_during_prefill_releases_its_chunk_tokens(profile: Any) -> None:
    replica = Replica(profile, max_num_seqs=4, max_num_batched_tokens=500)
    replica.submit(Request("long", 0.0, 2000, 5))
    replica.submit(Request("short", 0.0, 10, 1))
    replica.step()
    assert replica.kv_usage > 0 and replica.num_running == 1
    assert replica.abort("long")
    assert replica.kv_usage == 0
    replica.advance(math.inf)
    assert [c.request.id for c in replica.take_finished()] == ["short"]
    assert replica.idle and replica.stats.requests_finished == 1
