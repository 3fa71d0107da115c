"""What one replica can serve within the pool's p99 SLOs, from its capacity profile.

* p99 inter-token latency at batch B: the step that decodes B sequences (each holding the mean
  context: prompt + half the output) and also fills the rest of the chunked-prefill token budget
  (maxNumBatchedTokens) with prompt chunks. Under any real load more than 1% of steps are filled
  so (prompts of several requests share a step), so the p99 step is such a step. Corrected online.
* Concurrency: the largest B whose p99 ITL meets the SLO x ``BatchingTuning.itl_margin``.
* Mean step at arrival rate lambda (Little's law over one step): a step of s seconds decodes
  n = lambda x output x s running sequences and prefills lambda x prompt x s prompt tokens, and
  takes the profile's step time for that mix, in which a prefill chunk only adds what exceeds the
  weight pass it shares with the decodes. s is that fixed point; none exists when the step would
  grow without bound (the replica is overloaded).
* Arrival rate (queueing-aware): a request's TTFT is its own prefill plus its wait for the prompts
  ahead of it, modelled separately. Its own prefill is the mean prompt in chunks of what the budget
  leaves beside the n decodes, each chunk a full step: 1 / mu', where mu' = (budget - n) / (prompt x
  full step) is the rate at which such steps prefill whole prompts. The wait is an M/M/1 queue's:
  its p99 is ln(100 x lambda / mu') / (mu' - lambda), zero below 1% load. The planned rate is the
  largest lambda with p99 TTFT = 1 / mu' + wait p99 + one full step (in progress at arrival) <= SLO
  and n <= B. Prompts far longer than the mean (a heavy tail) are not in the mean shape: the online
  correction of the prefill time (planner.correction) learns what they add to the measured p99.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

from pydantic import Field

from ..signals.model import PoolSignals
from .capacity import CapacityProfile
from .tuning import DEFAULT_TUNING, ShapeTuning

LN100 = math.log(100.0)
RATE_TOLERANCE = 1e-4
"""Relative precision of the planned arrival rate."""
RATE_FLOOR = 1e-3
"""Below this share of its sequential throughput (each request prefilled, then decoded at the planned batch)
a replica counts as serving nothing within the TTFT SLO."""


@dataclass(frozen=True)
class Workload:
    """Mean request shape of a pool."""

    prompt_tokens: float
    output_tokens: float

    @property
    def context_tokens(self) -> float:
        """Mean cached tokens of a running sequence over its decode lifetime."""
        return self.prompt_tokens + self.output_tokens / 2

    @classmethod
    def default(cls, max_context_tokens: int, tuning: ShapeTuning) -> Workload:
        """The lengths planned for until any were measured."""
        return cls(tuning.default_prompt_tokens, tuning.default_output_tokens).fitted(max_context_tokens)

    def longer(self, other: Workload | None) -> Workload:
        """The longer prompt and the longer output of the two."""
        if other is None:
            return self
        return Workload(max(self.prompt_tokens, other.prompt_tokens), max(self.output_tokens, other.output_tokens))

    def fitted(self, max_context_tokens: int) -> Workload:
        """Both lengths scaled down together to fit ``max_context_tokens``."""
        scale = min(1.0, max_context_tokens / (self.prompt_tokens + self.output_tokens))
        return Workload(self.prompt_tokens * scale, self.output_tokens * scale)


@dataclass(frozen=True)
class TokenRates:
    """Prompt tokens, output tokens and requests per second, smoothed (EWMA over ``ShapeTuning.length_tau_s``).

    Their ratios are the mean request lengths over the last minutes, weighted by requests; one rate
    window's ratio swings by a third on real traces (a 70B fleet sized on a minute of short requests
    scaled down into the long ones of the next), and spikes when few requests completed in it.
    Engines count prompt tokens at prefill but requests at completion, so the requests are the
    completions plus ``admitted``: the growth of the running requests per second over the rate window
    (prefilled, not yet complete; negative while they drain). Without it a pool starting into full
    traffic reads prompts many times too long.
    """

    prompt: Annotated[float, Field(ge=0)]
    output: Annotated[float, Field(ge=0)]
    requests: Annotated[float, Field(ge=0)]

    def updated(self, window: TokenRates | None, dt: float, tuning: ShapeTuning) -> TokenRates:
        """The rates after ``dt`` seconds whose rate window showed ``window`` (None while the pool is idle:
        unchanged)."""
        if window is None:
            return self
        keep = math.exp(-max(dt, 0.0) / tuning.length_tau_s)
        return TokenRates(*(keep * old + (1 - keep) * new for old, new in
                            zip((self.prompt, self.output, self.requests),
                                (window.prompt, window.output, window.requests), strict=True)))

    @classmethod
    def of(cls, signals: PoolSignals, admitted: float = 0.0) -> TokenRates | None:
        """The rates one window shows (None while the pool takes no requests or reports no token rates)."""
        observed = _observed_rates(signals, admitted)
        return None if observed is None else cls(*observed)

    def workload(self, max_context_tokens: int) -> Workload:
        """The smoothed mean lengths."""
        return Workload(max(self.prompt / self.requests, 1.0),
                        max(self.output / self.requests, 1.0)).fitted(max_context_tokens)


def _observed_rates(signals: PoolSignals, admitted: float) -> tuple[float, float, float] | None:
    rate, prompt, output = (signals.request_rate.value, signals.prompt_tokens_per_second.value,
                            signals.output_tokens_per_second.value)
    if rate is None or prompt is None or output is None or rate + admitted <= 1e-6:
        return None
    return prompt, output, rate + admitted


@dataclass(frozen=True)
class Correction:
    """Observed / predicted multipliers on decode step time and on prefill time."""

    step: float = 1.0
    prefill: float = 1.0


@dataclass(frozen=True)
class ReplicaModel:
    """A profile with its online correction, evaluated for one pool's workload and chunk budget."""

    profile: CapacityProfile
    correction: Correction
    workload: Workload
    max_num_batched_tokens: int

    @cached_property
    def engine(self) -> CapacityProfile:
        """The profile with the correction applied: step times x step, prefill time x prefill."""
        return self.profile.scaled(self.correction.step, self.correction.prefill)

    def step(self, decoding: float, prefill_tokens: float = 0.0) -> float:
        """Seconds of a step decoding ``decoding`` sequences of the mean context and prefilling ``prefill_tokens``."""
        return self.engine.step_time(max(decoding, 1.0), round(decoding * self.workload.context_tokens),
                                     round(prefill_tokens))

    def decode_step(self, batch: int) -> float:
        """Mean decode step at ``batch`` (no prefill chunk), corrected."""
        return self.step(batch)

    def itl_p99(self, batch: float) -> float:
        """Predicted p99 inter-token latency at ``batch``: a decode step filled to the token budget with prefill."""
        return self.step(batch, max(0.0, self.max_num_batched_tokens - batch))

    def decode_cost(self, batch: int) -> float:
        """Replica seconds of decoding per request at ``batch``: its output tokens x the step / batch, corrected."""
        return self.workload.output_tokens * self.decode_step(batch) / batch

    def prefill_service(self) -> float:
        """Seconds of prefill per request on an otherwise idle replica, corrected."""
        return self.engine.prefill_time(round(self.workload.prompt_tokens))

    def mean_step(self, rate: float) -> float | None:
        """Mean step at ``rate`` req/s (the fixed point of Little's law over one step); None if overloaded.

        A step of s seconds decodes ``rate x output x s`` sequences and prefills ``rate x prompt x s``
        tokens; its time is affine in the decoding count and, beyond the weight pass, in the prompt
        tokens, so each pass solves s = step(s) exactly for the slope at the last decoding count, on
        whichever side of the weight pass the fixed point lies. Beyond it the weight pass is paid by the
        prompts, and the replica is overloaded once the decode and prefill work per second reach one
        second. Three passes settle the small-batch and MoE terms, which are not affine.
        """
        engine, work = self.engine, self.workload
        slope = engine.decode_per_seq_s + engine.decode_per_cached_token_s * work.context_tokens
        prefill_per_req = work.prompt_tokens / engine.prefill_tokens_per_s
        decoding, step = 0.0, 0.0
        for _ in range(3):
            intercept = self.step(decoding) - slope * decoding
            grow = slope * rate * work.output_tokens
            if grow >= 1.0:
                return None
            step = intercept / (1.0 - grow)
            if rate * prefill_per_req * step > engine.decode_base_s:  # the chunks exceed the weight pass
                grow += rate * prefill_per_req
                if grow >= 1.0:
                    return None
                step = (intercept - engine.decode_base_s) / (1.0 - grow)
            decoding = rate * work.output_tokens * step
        return step

    def prefill_load(self, rate: float) -> float | None:
        """Utilization of the prefill server at ``rate`` req/s: rate / mu' (None when overloaded)."""
        server = self._prefill_server(rate)
        return None if server is None else rate / server[1]

    def _prefill_server(self, rate: float) -> tuple[float, float, float] | None:
        """(sequences decoding, mu': prompts per second that steps filled to the token budget prefill next to
        them, that full step) at ``rate`` req/s; None when overloaded."""
        step = self.mean_step(rate)
        if step is None:
            return None
        decoding = rate * self.workload.output_tokens * step
        left = self.max_num_batched_tokens - decoding
        if left <= 0:
            return None
        full = self.step(decoding, left)
        return decoding, left / (full * self.workload.prompt_tokens), full

    def ttft_p99(self, rate: float, batch: float = math.inf) -> float | None:
        """Predicted p99 TTFT at ``rate`` req/s per replica with at most ``batch`` decoding (None when overloaded).

        The prompt's own prefill (the mean prompt in chunks of the budget left beside the decodes, each
        a full step) plus the p99 of its wait for the prompts ahead of it (M/M/1 waiting time:
        ln(100 x load) / (mu' - rate), 0 below 1% load) plus the step in progress at its arrival.
        """
        server = self._prefill_server(rate)
        if server is None or server[0] > batch or server[1] <= rate:
            return None
        _, mu, full = server
        wait = max(0.0, math.log(100.0 * rate / mu)) / (mu - rate) if rate > 0 else 0.0
        return 1.0 / mu + wait + full

    def max_batch(self, target_itl: float, upper: int, with_prefill: bool = True) -> int:
        """Largest batch in [1, upper] whose p99 (or decode-only) ITL <= ``target_itl``; 0 if none."""
        latency = self.itl_p99 if with_prefill else self.decode_step
        low, high = 0, upper
        while low < high:
            middle = (low + high + 1) // 2
            if latency(middle) <= target_itl:
                low = middle
            else:
                high = middle - 1
        return low

    def kv_batch_limit(self) -> int:
        """Sequences of full length (prompt + output) the KV cache holds."""
        full = self.workload.prompt_tokens + self.workload.output_tokens
        return max(1, int(self.profile.kv_cache_tokens // max(full, 1.0)))

    def arrival_rate(self, batch: int, ttft_slo: float) -> float:
        """Largest arrival rate (req/s) one replica serves at concurrency ``batch`` within the TTFT SLO."""

        def meets(rate: float) -> bool:
            ttft = self.ttft_p99(rate, batch)
            return ttft is not None and ttft <= ttft_slo

        high = 1.0 / (self.prefill_service() + self.decode_cost(batch))
        if not meets(RATE_FLOOR * high):
            return 0.0
        low = RATE_FLOOR * high
        while meets(high):
            low, high = high, 2 * high
        while high - low > RATE_TOLERANCE * high:
            middle = (low + high) / 2
            low, high = (middle, high) if meets(middle) else (low, middle)
        return low


@dataclass(frozen=True)
class SloCapacity:
    """One replica's planned concurrency and arrival rate within the SLOs."""

    batch: int
    """Concurrency per replica the plan assumes (<= max-num-seqs, ITL-feasible)."""
    itl_p99: float
    """Predicted p99 ITL at that concurrency."""
    rate: float
    """Arrival rate one replica serves within both SLOs (req/s), before target utilization."""
    problem: str | None
    """Why an SLO cannot be met by adding replicas, if so."""


def itl_batch(model: ReplicaModel, itl_slo: float, upper: int,
              itl_margin: float = DEFAULT_TUNING.batching.itl_margin) -> tuple[int, str | None]:
    """Largest batch in [1, upper] meeting the ITL SLO x ``itl_margin``, and why the SLO is unattainable if so.

    When even batch 1 misses it because of the prefill chunk a step carries, more batch slots
    cannot help: the batch is then sized on decode-only steps and the problem is reported.
    """
    target = itl_slo * itl_margin
    batch = model.max_batch(target, upper)
    if batch > 0:
        return batch, None
    problem = (
        f"ITL p99 floor {model.itl_p99(1) * 1e3:.0f}ms from {model.max_num_batched_tokens}-token prefill chunks "
        f"exceeds the SLO {itl_slo * 1e3:.0f}ms; lower batching.maxNumBatchedTokens"
    )
    return max(1, model.max_batch(target, upper, with_prefill=False)), problem


def slo_capacity(model: ReplicaModel, max_num_seqs: int, itl_slo: float, ttft_slo: float,
                 itl_margin: float = DEFAULT_TUNING.batching.itl_margin) -> SloCapacity:
    """Concurrency and arrival rate of one replica running with ``max_num_seqs``."""
    batch, problem = itl_batch(model, itl_slo, min(max_num_seqs, model.kv_batch_limit()), itl_margin)
    rate = model.arrival_rate(batch, ttft_slo)
    if rate <= 0:
        problem = (
            f"TTFT p99 {ttft_slo * 1e3:.0f}ms is unattainable: a {model.workload.prompt_tokens:.0f}-token "
            f"prompt needs {model.prefill_service() * 1e3:.0f}ms of prefill plus queueing"
        )
        rate = 1.0 / (model.prefill_service() + model.decode_cost(batch))
    return SloCapacity(batch, model.itl_p99(batch), rate, problem)
