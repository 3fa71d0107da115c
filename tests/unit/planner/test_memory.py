"""A pool's memory: estimator values composed, shifted whole on a clock step, kept across versions."""

from __future__ import annotations

import json

from inferencefleet.planner.memory import MEMORY_VERSION, decode_memory, encode_memory, memory_time

from .conftest import World, pool
from .test_controller import KEY, replicas_over


def _lived() -> World:
    world = World([pool()], ready_after=60.0)
    replicas_over(world, [10.0] * 4 + [80.0] * 8 + [200.0] * 2, waiting=3.0)  # the last scale-up still starting
    return world


def test_a_clock_shift_moves_every_planner_time_and_no_pod_creation_time():
    memory = _lived().state.memory(KEY)
    moved = memory.shifted(1000.0)
    assert moved.updated_at == memory.updated_at + 1000.0
    assert moved.demand.traffic_since == memory.demand.traffic_since + 1000.0
    assert moved.correction.unsteady_at == memory.correction.unsteady_at + 1000.0
    assert moved.scale.last_scale_up == memory.scale.last_scale_up + 1000.0
    assert moved.scale.last_request_at == memory.scale.last_request_at + 1000.0
    for before, after in ((memory.shape.running, moved.shape.running), (memory.scale.needs, moved.scale.needs),
                          (memory.ready_seen, moved.ready_seen)):
        assert before and [t + 1000.0 for t, _ in before] == [t for t, _ in after]
    assert memory.cold_start.starting_since and moved.cold_start.starting_since == memory.cold_start.starting_since


def test_the_encoded_memory_round_trips_and_a_flat_version_1_memory_is_still_read():
    memory = _lived().state.memory(KEY)
    assert decode_memory(encode_memory(memory)) == memory
    assert json.loads(encode_memory(memory))["v"] == MEMORY_VERSION
    flat = {"v": 1, "updated_at": 50.0, "demand_level": 12.0, "demand_trend": 0.25, "demand_trend_filled": 0.5,
            "prompt_tokens_rate": 9000.0, "output_tokens_rate": 2000.0, "completions_rate": 10.0,
            "running": [[45.0, 30.0]], "prefill_correction": 1.3, "last_scale_down": 20.0, "max_num_seqs": 128}
    read = decode_memory(json.dumps(flat))
    assert read is not None and read.updated_at == 50.0
    assert (read.demand.holt.level, read.demand.holt.trend, read.demand.holt.filled) == (12.0, 0.25, 0.5)
    assert (read.shape.rates.prompt, read.shape.rates.requests, read.shape.running) == (9000.0, 10.0, ((45.0, 30.0),))
    assert (read.correction.prefill, read.rollout.max_num_seqs) == (1.3, 128)


def test_an_unknown_version_or_a_broken_memory_is_not_read():
    assert decode_memory(json.dumps({"v": 99})) is None
    assert decode_memory('{"v": 2, "headroom": {"value": 0.5}}') is None
    assert decode_memory("not json") is None


def test_the_time_of_a_persisted_memory_is_read_without_the_rest():
    memory = _lived().state.memory(KEY)
    assert memory_time(encode_memory(memory)) == memory.updated_at
    assert memory_time('{"v": 1, "updated_at": 50}') == 50.0
    for text in (None, "", "not json", '{"v": 99, "updated_at": 50}', '{"v": 2, "updated_at": "soon"}', "[]"):
        assert memory_time(text) is None
