"""One continuous-batching inference replica (vLLM V1 scheduling), pure and deterministic.

Scheduling per engine step, as vLLM V1 does it with chunked prefill:
1. every running sequence that has finished prefill decodes one token;
2. the rest of the ``max_num_batched_tokens`` budget goes to prefill chunks, first to sequences
   already admitted, then to waiting requests admitted in FIFO order while the batch has fewer than
   ``max_num_seqs`` sequences and the KV cache can hold the request's prompt plus output tokens
   (reserved at admission, so there is no preemption: TensorRT-LLM's guaranteed-no-evict policy);
3. the step lasts ``profile.step_time(decoding sequences, their cached tokens, prefill tokens)``;
   a sequence whose prefill completes emits its first token at the end of that step.

Two ways to drive it, one implementation:
- ``step()`` runs exactly one engine step and says which requests got a token (the engine-sim
  server calls it in real time and streams the tokens);
- ``advance(until)`` runs every step that starts before ``until`` and jumps in O(1) over runs of
  identical steps (pure decode, or decode plus a full chunk of one long prompt), stopping only at
  events: a sequence finishing, an arrival, a prompt's last chunk. This assumes what the planner's
  capacity model gives: step time is affine in cached tokens at a fixed batch, and a prefill chunk
  adds a time that does not depend on them. The fleet simulator uses this.
Finished requests collect in ``finished`` (drain with ``take_finished()``); cumulative metrics in
``stats`` mirror what vLLM's ``/metrics`` exports.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Protocol

from ..signals.buckets import E2E_EDGES, ITL_EDGES, TTFT_EDGES
from .histogram import Histogram


class StepModel(Protocol):
    """What the replica needs from a capacity profile (planner.capacity.CapacityProfile fits it)."""

    @property
    def kv_cache_tokens(self) -> int: ...

    def step_time(self, batch: int, cached_tokens: int, prefill_tokens: int = 0) -> float:
        """Seconds for one engine step."""
        ...


@dataclass(frozen=True, slots=True)
class Request:
    """One inference request: arrival time (s), prompt and output lengths (tokens)."""

    id: int | str
    arrival: float
    prompt_tokens: int
    output_tokens: int

    def __post_init__(self) -> None:
        if self.prompt_tokens < 1 or self.output_tokens < 1:
            raise ValueError(
                f"request {self.id}: prompt_tokens and output_tokens must be >= 1 "
                f"(got {self.prompt_tokens} and {self.output_tokens})"
            )


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished request and its latencies."""

    request: Request
    scheduled: float
    """When its first prefill chunk ran (queue time = scheduled - arrival)."""
    first_token: float
    finished: float
    slow_gaps: int
    """Inter-token gaps longer than the replica's ``itl_slo``."""

    @property
    def ttft(self) -> float:
        return self.first_token - self.request.arrival

    @property
    def e2e(self) -> float:
        return self.finished - self.request.arrival

    @property
    def gaps(self) -> int:
        """Inter-token gaps (output tokens - 1)."""
        return self.request.output_tokens - 1

    @property
    def tpot(self) -> float:
        """Mean time per output token after the first (0 for single-token outputs)."""
        return (self.finished - self.first_token) / self.gaps if self.gaps else 0.0

    @property
    def itl_ok(self) -> bool:
        """Its own p99 inter-token latency (nearest rank) is within the replica's ``itl_slo``: at most
        floor(1% of its gaps) exceeded it."""
        return self.slow_gaps <= math.floor(0.01 * self.gaps)


@dataclass(slots=True)
class ReplicaStats:
    """Cumulative counters and histograms, named after vLLM's metrics."""

    requests_received: int = 0
    requests_rejected: int = 0
    """Never fit in the KV cache (prompt + output tokens above its capacity)."""
    requests_finished: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    steps: int = 0
    busy_seconds: float = 0.0
    ttft: Histogram = field(default_factory=lambda: Histogram(TTFT_EDGES))
    itl: Histogram = field(default_factory=lambda: Histogram(ITL_EDGES))
    e2e: Histogram = field(default_factory=lambda: Histogram(E2E_EDGES))


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one engine step did (returned by ``Replica.step``)."""

    started: float
    duration: float
    first_tokens: tuple[Request, ...]
    """Requests whose prefill completed: their first token."""
    decoded: tuple[Request, ...]
    """Requests that decoded one more token (including those that finished)."""
    finished: tuple[Completion, ...]

    @property
    def ended(self) -> float:
        return self.started + self.duration


class _Seq:
    """A request inside the replica."""

    __slots__ = ("context", "finish_tick", "first_token", "kv", "prefill_left", "request", "scheduled", "slow0",
                 "start_tick")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.prefill_left = request.prompt_tokens
        self.kv = request.prompt_tokens + request.output_tokens
        """KV tokens reserved at admission (prompt + output)."""
        self.context = 0
        self.scheduled = math.nan
        self.first_token = math.nan
        self.start_tick = 0
        self.finish_tick = 0
        self.slow0 = 0

    def __lt__(self, other: _Seq) -> bool:  # heap tie-break: earlier arrival first
        return self.request.arrival < other.request.arrival


class Replica:
    """A continuous-batching replica; see the module docstring for the scheduling rules."""

    def __init__(
        self,
        profile: StepModel,
        *,
        max_num_seqs: int,
        max_num_batched_tokens: int,
        itl_slo: float = math.inf,
        start: float = 0.0,
    ) -> None:
        if max_num_seqs < 1 or max_num_batched_tokens < max_num_seqs:
            raise ValueError(
                f"max_num_seqs must be >= 1 and max_num_batched_tokens >= max_num_seqs "
                f"(got {max_num_seqs} and {max_num_batched_tokens})"
            )
        self.profile = profile
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.kv_capacity = int(profile.kv_cache_tokens)
        self.itl_slo = itl_slo
        self.clock = start
        self.stats = ReplicaStats()
        self.finished: list[Completion] = []
        self._waiting: deque[_Seq] = deque()
        self._prefilling: list[_Seq] = []
        self._decoding: dict[int, _Seq] = {}
        self._finish_heap: list[tuple[int, _Seq]] = []
        self._cached = 0  # cached tokens of decoding sequences
        self._prefill_cached = 0  # tokens already prefilled by sequences still prefilling
        self._reserved = 0  # KV tokens reserved by admitted sequences
        self._tick = 0  # decode steps run so far
        self._slow = 0  # decode steps longer than itl_slo so far
        self.next_event = math.inf
        """Earliest time a request can finish if nothing arrives (a lower bound); inf if idle."""
        self._one_token_queued = 0  # waiting or prefilling requests of one output token
        self._decode_fit: dict[int, tuple[float, float, float]] = {}
        """batch -> (decode step at 0 cached tokens, added per cached token, added per step)."""
        self._chunk_extra: dict[int, float] = {}  # batch -> time a full prefill chunk adds to the step
        self.outstanding = 0
        """Requests submitted and not finished (running + waiting)."""

    # ------------------------------------------------------------------ gauges
    @property
    def num_running(self) -> int:
        return len(self._decoding) + len(self._prefilling)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    @property
    def kv_usage(self) -> float:
        """Share of the KV cache holding tokens, 0..1 (vllm:kv_cache_usage_perc)."""
        return (self._cached + self._prefill_cached) / self.kv_capacity

    @property
    def idle(self) -> bool:
        return not (self._decoding or self._prefilling or self._waiting)

    # ------------------------------------------------------------------ driving
    def submit(self, request: Request) -> bool:
        """Queue a request arriving now (steps before its arrival run first); False if it can never fit."""
        self._run(request.arrival)
        self.stats.requests_received += 1
        seq = _Seq(request)
        if seq.kv > self.kv_capacity:
            self.stats.requests_rejected += 1
            self._refresh_next_event()
            return False
        self._waiting.append(seq)
        self._one_token_queued += request.output_tokens == 1
        self.outstanding += 1
        self._refresh_next_event()
        return True

    def advance(self, until: float) -> None:
        """Run every engine step that starts before ``until``; an idle replica's clock moves to ``until``."""
        self._run(until)
        self._refresh_next_event()

    def _run(self, until: float) -> None:
        """Steps starting before ``until``; on return ``clock >= until``."""
        while self.clock < until:
            if self._prefilling or self._can_admit():
                if not (len(self._prefilling) == 1 and self._chunk_run(until)):
                    self._mixed_step(None)
            elif self._decoding:
                first, slope = self._decode_times()
                self._decode_run(self._decode_steps_before(until, first, slope), first, slope, None)
            else:
                self.clock = until

    def step(self) -> StepOutcome | None:
        """Run exactly one engine step now; None when there is nothing to do."""
        if not (self._needs_scheduling() or self._decoding):
            return None
        detail: dict[str, list[Request]] = {"first": [], "decoded": []}
        started, done = self.clock, len(self.finished)
        if self._needs_scheduling():
            self._mixed_step(detail)
        else:
            self._decode_run(1, *self._decode_times(), detail)
        self._refresh_next_event()
        return StepOutcome(
            started=started,
            duration=self.clock - started,
            first_tokens=tuple(detail["first"]),
            decoded=tuple(detail["decoded"]),
            finished=tuple(self.finished[done:]),
        )

    def _refresh_next_event(self) -> None:
        """``next_event``: the earliest time a request can finish if nothing arrives (a lower bound).

        Running sequences finish after their remaining decode steps, and prefill chunks or new
        sequences only make steps longer, so pure decode steps at the current batch bound the next
        finish from below; a one-token request about to be prefilled finishes with its prefill: now.
        """
        schedulable = bool(self._prefilling) or self._can_admit()
        if self._decoding and not (schedulable and self._one_token_queued and self._one_token_may_finish()):
            first, slope = self._decode_times()
            steps = self._finish_heap[0][0] - self._tick
            self.next_event = self.clock + (steps * first + slope * steps * (steps - 1) / 2)
        else:
            self.next_event = self.clock if schedulable else math.inf

    def _one_token_may_finish(self) -> bool:
        """A one-token request is prefilling or may be admitted at the next step (it ends with its prefill)."""
        if any(s.request.output_tokens == 1 for s in self._prefilling):
            return True
        room = self.max_num_seqs - self.num_running
        return room > 0 and any(s.request.output_tokens == 1 for s in islice(self._waiting, room))

    def abort(self, request_id: int | str) -> bool:
        """Drop a waiting or running request now (a client disconnect), freeing its batch slot and KV reservation.

        False when no such request is in the replica (unknown or already finished). It never completes.
        """
        seq = next((s for s in self._waiting if s.request.id == request_id), None)
        if seq is not None:
            self._waiting.remove(seq)
        elif (seq := next((s for s in self._prefilling if s.request.id == request_id), None)) is not None:
            self._prefilling.remove(seq)
            self._prefill_cached -= seq.context
            self._reserved -= seq.kv
        elif (seq := next((s for s in self._decoding.values() if s.request.id == request_id), None)) is not None:
            del self._decoding[id(seq)]
            self._finish_heap.remove((seq.finish_tick, seq))
            heapq.heapify(self._finish_heap)
            self._cached -= seq.context + (self._tick - seq.start_tick)
            self._reserved -= seq.kv
        else:
            return False
        if seq.request.output_tokens == 1:  # only queued or prefilling one-token requests are counted
            self._one_token_queued -= 1
        self.outstanding -= 1
        self._refresh_next_event()
        return True

    def take_finished(self) -> list[Completion]:
        """Completions since the last call."""
        out, self.finished = self.finished, []
        return out

    # ------------------------------------------------------------------ internals
    def _needs_scheduling(self) -> bool:
        """A prefill chunk is pending or the head of the queue can be admitted."""
        return bool(self._prefilling) or self._can_admit()

    def _decode_times(self) -> tuple[float, float]:
        """Duration of the next pure decode step and how much each further step adds.

        Step time is affine in cached tokens at a fixed batch, so two profile calls per batch size
        give it for any context.
        """
        batch = len(self._decoding)
        fit = self._decode_fit.get(batch)
        if fit is None:
            at_zero = self.profile.step_time(batch, 0, 0)
            per_token = (self.profile.step_time(batch, batch * 1024, 0) - at_zero) / (batch * 1024)
            fit = self._decode_fit[batch] = (at_zero, per_token, max(0.0, per_token * batch))
        return fit[0] + fit[1] * self._cached, fit[2]

    def _decode_steps_before(self, until: float, first: float, slope: float, limit: int | None = None) -> int:
        """Steps to run now: those starting before ``until`` (> clock), up to the next finish and ``limit``."""
        to_finish: float = self._finish_heap[0][0] - self._tick if self._finish_heap else math.inf
        if limit is not None and limit < to_finish:
            to_finish = limit
        gap = until - self.clock
        if gap == math.inf:
            return int(to_finish)
        # count of j >= 0 whose start run_length(j) < gap: solve the quadratic, then correct rounding
        if slope > 0:
            b = first - slope / 2
            steps = math.ceil((-b + math.sqrt(b * b + 2 * slope * gap)) / slope)
        else:
            steps = math.ceil(gap / first)
        steps = int(max(1, min(steps, to_finish)))
        while steps < to_finish and steps * first + slope * steps * (steps - 1) / 2 < gap:
            steps += 1
        while steps > 1 and (steps - 1) * first + slope * (steps - 1) * (steps - 2) / 2 >= gap:
            steps -= 1
        return steps

    def _decode_run(self, steps: int, first: float, slope: float, detail: dict[str, list[Request]] | None) -> None:
        """Run ``steps`` decode steps of the current batch (no prefill, no admission in between)."""
        batch = len(self._decoding)
        duration = steps * first + slope * steps * (steps - 1) / 2
        if detail is not None:
            detail["decoded"].extend(s.request for s in self._decoding.values())
        self.stats.itl.observe_linear(first, slope, steps, batch)
        if first + (steps - 1) * slope > self.itl_slo:
            self._slow += _count_above(first, slope, steps, self.itl_slo)
        self._finish_decode(batch, steps, duration)

    def _chunk_run(self, until: float) -> bool:
        """Run, in O(1), the steps in which one long prompt fills the whole token budget; False if none.

        Such steps repeat unchanged (the decode batch plus a full chunk; nothing can be admitted) until
        the prompt's last chunk, the next decode finish or ``until``.
        """
        if len(self._prefilling) != 1:
            return False
        seq = self._prefilling[0]
        batch = len(self._decoding)
        chunk = self.max_num_batched_tokens - batch
        full = (seq.prefill_left - 1) // chunk  # full chunks before the one that completes the prompt
        if full < 2:
            return False
        extra = self._chunk_extra.get(batch)
        if extra is None:  # what a full chunk adds to the decode step (all of the step with no decode)
            extra = self.profile.step_time(batch, 0, chunk) - (self.profile.step_time(batch, 0, 0) if batch else 0.0)
            self._chunk_extra[batch] = extra
        decode, slope = self._decode_times() if batch else (0.0, 0.0)
        first = decode + extra
        steps = self._decode_steps_before(until, first, slope, full)
        duration = _run_length(first, slope, steps)
        if batch:
            self.stats.itl.observe_linear(first, slope, steps, batch)
            if first + (steps - 1) * slope > self.itl_slo:
                self._slow += _count_above(first, slope, steps, self.itl_slo)
        tokens = chunk * steps
        seq.prefill_left -= tokens
        seq.context += tokens
        self._prefill_cached += tokens
        self.stats.prompt_tokens += tokens
        self._finish_decode(batch, steps, duration)
        return True

    def _mixed_step(self, detail: dict[str, list[Request]] | None) -> None:
        """One step with prefill chunks (and admissions) plus one decode token per decoding sequence."""
        batch = len(self._decoding)
        budget = self.max_num_batched_tokens - batch
        prefilling = self._prefilling
        chunks: list[tuple[_Seq, int]] = []
        for seq in prefilling:
            if budget <= 0:
                break
            take = seq.prefill_left if seq.prefill_left < budget else budget
            chunks.append((seq, take))
            budget -= take
        while budget > 0 and self._can_admit():
            seq = self._waiting.popleft()
            seq.scheduled = self.clock
            self._reserved += seq.kv
            prefilling.append(seq)
            take = seq.prefill_left if seq.prefill_left < budget else budget
            chunks.append((seq, take))
            budget -= take
        prefill = self.max_num_batched_tokens - batch - budget
        duration = self.profile.step_time(batch, self._cached, prefill)
        if detail is not None:
            detail["decoded"].extend(s.request for s in self._decoding.values())
        if batch:
            self.stats.itl.observe(duration, batch)
            self._slow += duration > self.itl_slo
        self.stats.prompt_tokens += prefill
        self._prefill_cached += prefill
        end = self.clock + duration
        for seq, take in chunks:
            seq.prefill_left -= take
            seq.context += take
        self._finish_decode(batch, 1, duration)
        for seq, _ in chunks:
            if seq.prefill_left == 0:
                prefilling.remove(seq)
                self._prefill_cached -= seq.context
                self._first_token(seq, end, detail)

    def _can_admit(self) -> bool:
        """A request waits, the batch has room and the KV cache can reserve the head's prompt and output."""
        waiting = self._waiting
        return (bool(waiting) and len(self._decoding) + len(self._prefilling) < self.max_num_seqs
                and self._reserved + waiting[0].kv <= self.kv_capacity)

    def _finish_decode(self, batch: int, steps: int, duration: float) -> None:
        """Account ``steps`` steps of ``batch`` decode tokens ending ``duration`` from now; retire finishers."""
        self.clock += duration
        stats = self.stats
        stats.steps += steps
        stats.busy_seconds += duration
        stats.generation_tokens += batch * steps
        tick = self._tick = self._tick + steps
        self._cached += batch * steps
        heap = self._finish_heap
        while heap and heap[0][0] <= tick:
            seq = heapq.heappop(heap)[1]
            del self._decoding[id(seq)]
            self._cached -= seq.context + (tick - seq.start_tick)
            self._complete(seq, self._slow - seq.slow0)

    def _first_token(self, seq: _Seq, at: float, detail: dict[str, list[Request]] | None) -> None:
        seq.first_token = at
        self.stats.ttft.observe(at - seq.request.arrival)
        self.stats.generation_tokens += 1
        if detail is not None:
            detail["first"].append(seq.request)
        remaining = seq.request.output_tokens - 1
        if remaining == 0:
            self._one_token_queued -= 1
            self._complete(seq, 0)
            return
        seq.context += 1
        seq.start_tick = self._tick
        seq.finish_tick = self._tick + remaining
        seq.slow0 = self._slow
        self._decoding[id(seq)] = seq
        self._cached += seq.context
        heapq.heappush(self._finish_heap, (seq.finish_tick, seq))

    def _complete(self, seq: _Seq, slow_gaps: int) -> None:
        request = seq.request
        self.outstanding -= 1
        self._reserved -= seq.kv
        self.stats.requests_finished += 1
        self.stats.e2e.observe(self.clock - request.arrival)
        self.finished.append(Completion(request, seq.scheduled, seq.first_token, self.clock, slow_gaps))


def _run_length(first: float, slope: float, steps: int) -> float:
    """Total time of ``steps`` steps lasting first, first + slope, first + 2*slope, ..."""
    return steps * first + slope * steps * (steps - 1) / 2


def _count_above(first: float, slope: float, steps: int, threshold: float) -> int:
    """How many of first + i*slope (i < steps) exceed ``threshold``."""
    if steps <= 0 or math.isinf(threshold):
        return 0
    if slope <= 0:
        return steps if first > threshold else 0
    # first + i*slope > threshold  <=>  i > (threshold - first) / slope
    below = math.floor((threshold - first) / slope) + 1 if threshold >= first else 0
    return steps - min(steps, max(0, below))
