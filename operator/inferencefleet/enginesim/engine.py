"""The real-time engine loop: the fleet simulator's replica, stepped by one asyncio task.

Each iteration calls ``Replica.step()`` (which schedules, batches and times the step with the
capacity profile), sleeps until the step's end on the wall clock (model seconds / time scale) and
then hands every token the step produced to its request's stream. Steps are placed on an anchored
timeline rather than "now + duration", so sleep overshoot does not accumulate; when the host falls
more than ``MAX_LAG_S`` behind (a stalled event loop, more streams than one core can write), the
timeline re-anchors instead of bursting, and ``engine_sim_lag_seconds_total`` counts the time lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from ..planner.capacity import CapacityProfile, named_profile
from ..sim.replica import Replica, Request, StepOutcome
from .metrics import EngineMetrics
from .openai import ApiError

MAX_LAG_S = 0.02
"""Wall seconds the loop may fall behind its timeline before it re-anchors (no catch-up burst)."""
TIMELINES_KEPT = 1024
"""Recent request timelines kept for ``/sim/requests/{id}``."""


@dataclass(frozen=True)
class EngineConfig:
    """One simulated engine: its capacity profile, vLLM limits and the time scale."""

    profile: CapacityProfile
    model: str
    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int
    time_scale: float


def engine_config(*, profile: str, model: str, max_num_seqs: int, max_num_batched_tokens: int,
                  max_model_len: int, time_scale: float) -> EngineConfig:
    """Validate the command-line settings (one-line errors naming the flag)."""
    capacity = named_profile(profile, "--profile")
    if max_num_seqs < 1:
        raise UserError(f"--max-num-seqs must be >= 1, got {max_num_seqs}")
    if max_num_batched_tokens < max_num_seqs:
        raise UserError(f"--max-num-batched-tokens must be >= --max-num-seqs ({max_num_seqs}), "
                        f"got {max_num_batched_tokens}")
    if not 2 <= max_model_len <= capacity.kv_cache_tokens:
        raise UserError(f"--max-model-len must be in 2..{capacity.kv_cache_tokens} (the KV cache of {profile}), "
                        f"got {max_model_len}")
    if not time_scale > 0 or time_scale == float("inf"):
        raise UserError(f"--time-scale must be a positive finite number, got {time_scale}")
    if not model.strip():
        raise UserError("--model must not be empty")
    return EngineConfig(capacity, model, max_num_seqs, max_num_batched_tokens, max_model_len, time_scale)


class TokenStream:
    """The tokens of one request as they are produced; iterate to receive their wall times."""

    def __init__(self, engine: EngineLoop, request_id: str, finish_reason: str) -> None:
        self._engine = engine
        self.id = request_id
        self.finish_reason = finish_reason
        self.arrival = time.perf_counter()
        self.token_times: list[float] = []
        self.done = False
        self._queue: asyncio.Queue[float | None] = asyncio.Queue()

    def __aiter__(self) -> AsyncIterator[float]:
        return self._tokens()

    async def _tokens(self) -> AsyncIterator[float]:
        while (at := await self._queue.get()) is not None:
            yield at

    def abort(self) -> None:
        """The client went away before the last token: free its batch slot and KV cache, as vLLM does,
        and count it as finished_reason=abort."""
        if not self.done:
            self.done = True
            self._engine.drop(self.id)
            self._engine.metrics.success["abort"].inc()

    def push(self, at: float) -> None:
        """Deliver one token produced at wall time ``at``."""
        self.token_times.append(at)
        self._queue.put_nowait(at)

    def close(self) -> None:
        """No more tokens."""
        self._queue.put_nowait(None)


class EngineLoop:
    """Runs the replica in real time and fans its tokens out to the request streams."""

    def __init__(self, config: EngineConfig, metrics: EngineMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.replica = Replica(config.profile, max_num_seqs=config.max_num_seqs,
                               max_num_batched_tokens=config.max_num_batched_tokens)
        self._streams: dict[str, TokenStream] = {}
        self._timelines: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._work = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._anchor_wall = time.perf_counter()
        self._anchor_model = 0.0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="engine-sim step loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _model_time(self, wall: float) -> float:
        return self._anchor_model + (wall - self._anchor_wall) * self.config.time_scale

    def _wall_time(self, model: float) -> float:
        return self._anchor_wall + (model - self._anchor_model) / self.config.time_scale

    def _anchor(self, wall: float, model: float) -> None:
        self._anchor_wall, self._anchor_model = wall, model

    def submit(self, request_id: str, prompt_tokens: int, output_tokens: int, finish_reason: str) -> TokenStream:
        """Queue a request; its tokens arrive on the returned stream at the replica's pace."""
        stream = TokenStream(self, request_id, finish_reason)
        replica = self.replica
        if replica.idle:
            arrival = max(self._model_time(stream.arrival), replica.clock)
            self._anchor(stream.arrival, arrival)
        else:  # never behind the replica's clock: a late arrival must not run steps outside the loop
            arrival = min(self._model_time(stream.arrival), replica.clock)
        if not replica.submit(Request(request_id, arrival, prompt_tokens, output_tokens)):
            raise ApiError(f"the request needs {prompt_tokens + output_tokens} KV-cache tokens but the engine holds "
                           f"{replica.kv_capacity}", param="max_tokens")
        self._streams[request_id] = stream
        self.metrics.waiting.set(replica.num_waiting)
        self._work.set()
        return stream

    def drop(self, request_id: str) -> None:
        """Remove an aborted request from the replica and stop tracking its stream."""
        if self.replica.abort(request_id):
            self._streams.pop(request_id, None)

    def timeline(self, request_id: str) -> dict[str, Any] | None:
        """Server-clock facts of a recent request: arrival, token wall times, time scale."""
        return self._timelines.get(request_id)

    async def _run(self) -> None:
        while True:
            before = (self.replica.stats.prompt_tokens, self.replica.stats.generation_tokens)
            outcome = self.replica.step()
            if outcome is None:
                self._gauges(running=0, kv_usage=self.replica.kv_usage)
                self._work.clear()
                await self._work.wait()
                continue
            freed = sum(c.request.prompt_tokens + c.request.output_tokens for c in outcome.finished)
            self._gauges(running=self.replica.num_running + len(outcome.finished),  # the batch now in flight
                         kv_usage=self.replica.kv_usage + freed / self.replica.kv_capacity)
            deadline = self._wall_time(outcome.ended)
            delay = deadline - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)  # let request handlers run between steps
            now = time.perf_counter()
            if now - deadline > MAX_LAG_S:
                self.metrics.lag.inc(now - deadline)
                self._anchor(now, outcome.ended)
            self._deliver(outcome, now, before)

    def _deliver(self, outcome: StepOutcome, now: float, before: tuple[int, int]) -> None:
        replica, metrics, scale = self.replica, self.metrics, self.config.time_scale
        prompt = replica.stats.prompt_tokens - before[0]
        generated = replica.stats.generation_tokens - before[1]
        metrics.prompt_tokens.inc(prompt)
        metrics.generation_tokens.inc(generated)
        metrics.iteration_tokens.observe(prompt + generated)
        for request in (*outcome.first_tokens, *outcome.decoded):
            stream = self._streams.get(str(request.id))
            if stream is None or stream.done:  # aborted by its client during this step
                continue
            if stream.token_times:
                metrics.itl.observe((now - stream.token_times[-1]) * scale)
            else:
                metrics.ttft.observe((now - stream.arrival) * scale)
            stream.push(now)
        for completion in outcome.finished:
            stream = self._streams.pop(str(completion.request.id), None)
            if stream is None:  # aborted by its client during this step
                continue
            if not stream.done:
                stream.done = True
                metrics.queue_time.observe(completion.scheduled - completion.request.arrival)
                metrics.e2e.observe((now - stream.arrival) * scale)
                metrics.success[stream.finish_reason].inc()
            stream.close()
            self._remember(stream)

    def _gauges(self, running: int, kv_usage: float) -> None:
        """Scheduler gauges as vLLM records them when it schedules a step: the batch in flight (sequences
        finishing in it still hold their KV cache)."""
        self.metrics.running.set(running)
        self.metrics.waiting.set(self.replica.num_waiting)
        self.metrics.kv_cache_usage.set(kv_usage)

    def _remember(self, stream: TokenStream) -> None:
        self._timelines[stream.id] = {"id": stream.id, "time_scale": self.config.time_scale,
                                      "arrival": stream.arrival, "token_times": stream.token_times}
        while len(self._timelines) > TIMELINES_KEPT:
            self._timelines.popitem(last=False)
