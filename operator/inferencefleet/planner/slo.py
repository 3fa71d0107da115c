"""What one replica can serve within the pool's p99 SLOs, from its capacity profile.

* p99 inter-token latency at batch B: the step that decodes B sequences (each holding the mean
  context: prompt + half the output) and also fills the rest of the chunked-prefill token budget
  (maxNumBatchedTokens) with prompt chunks. Under any real load more than 1% of steps are filled
  so (prompts of several requests share a step), so the p99 step is such a step. Corrected online.
* Concurrency: the largest B whose p99 ITL meets the SLO x margin.
* Arrival rate (queueing-aware): prefill is an M/M/1 server whose p99 response time is
  ln(100) / (mu' - lambda), where mu' is the prefill service rate left over after decode work.
  Decode at concurrency B costs a = output x step(B) / B seconds of replica time per request, so
  mu' = mu (1 - lambda a). Requiring p99 TTFT = ln(100) / (mu' - lambda) + one step <= SLO gives
      lambda <= (mu - ln(100) / (TTFT - step)) / (1 + mu a),
  which tends to the throughput bound 1 / (a + 1/mu) when the TTFT SLO is loose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..signals.model import PoolSignals
from .capacity import CapacityProfile

ITL_MARGIN = 0.9
"""Plan for p99 ITL at 90% of the SLO."""
LN100 = math.log(100.0)
DEFAULT_PROMPT_TOKENS = 1024.0
DEFAULT_OUTPUT_TOKENS = 256.0
"""Lengths used until the pool reports token rates (Azure 2023 conversation trace: p50 1020 in / 129 out)."""


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
    def from_signals(cls, signals: PoolSignals, max_context_tokens: int, last: Workload | None = None) -> Workload:
        """Lengths from token rates over request rate; while the pool is idle or unmeasured, the ``last``
        lengths measured (the traffic that comes back is most likely the traffic that went), else defaults."""
        rate = signals.request_rate.value
        prompt, output = (DEFAULT_PROMPT_TOKENS, DEFAULT_OUTPUT_TOKENS) if last is None else \
            (last.prompt_tokens, last.output_tokens)
        if rate is not None and rate > 1e-6:
            if signals.prompt_tokens_per_second.value is not None:
                prompt = max(signals.prompt_tokens_per_second.value / rate, 1.0)
            if signals.output_tokens_per_second.value is not None:
                output = max(signals.output_tokens_per_second.value / rate, 1.0)
        scale = min(1.0, max_context_tokens / (prompt + output))
        return cls(prompt * scale, output * scale)


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

    def decode_step(self, batch: int) -> float:
        """Mean decode step at ``batch`` (no prefill chunk), corrected."""
        cached = round(batch * self.workload.context_tokens)
        return self.profile.step_time(batch, cached) * self.correction.step

    def itl_p99(self, batch: int) -> float:
        """Predicted p99 inter-token latency at ``batch``: a decode step filled to the token budget with prefill."""
        chunk = max(0, self.max_num_batched_tokens - batch)
        cached = round(batch * self.workload.context_tokens)
        decode = self.profile.step_time(batch, cached)
        extra = self.profile.step_time(batch, cached, chunk) - decode
        return decode * self.correction.step + extra * self.correction.prefill

    def decode_cost(self, batch: int) -> float:
        """Replica seconds of decoding per request at ``batch``: its output tokens x the step / batch, corrected."""
        return self.workload.output_tokens * self.decode_step(batch) / batch

    def prefill_service(self) -> float:
        """Seconds of prefill per request, corrected."""
        return self.profile.prefill_time(round(self.workload.prompt_tokens)) * self.correction.prefill

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
        mu = 1.0 / self.prefill_service()
        budget = ttft_slo - self.itl_p99(batch)
        if budget <= 0:
            return 0.0
        return max(0.0, (mu - LN100 / budget) / (1.0 + mu * self.decode_cost(batch)))

    def ttft_p99(self, rate: float, batch: int) -> float | None:
        """Predicted p99 TTFT at ``rate`` req/s per replica (None when the replica is overloaded)."""
        spare = (1.0 - rate * self.decode_cost(batch)) / self.prefill_service() - rate
        return None if spare <= 0 else LN100 / spare + self.itl_p99(batch)


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


def itl_batch(model: ReplicaModel, itl_slo: float, upper: int) -> tuple[int, str | None]:
    """Largest batch in [1, upper] meeting the ITL SLO x margin, and why the SLO is unattainable if so.

    When even batch 1 misses it because of the prefill chunk a step carries, more batch slots
    cannot help: the batch is then sized on decode-only steps and the problem is reported.
    """
    target = itl_slo * ITL_MARGIN
    batch = model.max_batch(target, upper)
    if batch > 0:
        return batch, None
    problem = (
        f"ITL p99 floor {model.itl_p99(1) * 1e3:.0f}ms from {model.max_num_batched_tokens}-token prefill chunks "
        f"exceeds the SLO {itl_slo * 1e3:.0f}ms; lower batching.maxNumBatchedTokens"
    )
    return max(1, model.max_batch(target, upper, with_prefill=False)), problem


def slo_capacity(model: ReplicaModel, max_num_seqs: int, itl_slo: float, ttft_slo: float) -> SloCapacity:
    """Concurrency and arrival rate of one replica running with ``max_num_seqs``."""
    batch, problem = itl_batch(model, itl_slo, min(max_num_seqs, model.kv_batch_limit()))
    rate = model.arrival_rate(batch, ttft_slo)
    if rate <= 0:
        problem = (
            f"TTFT p99 {ttft_slo * 1e3:.0f}ms is unattainable: a {model.workload.prompt_tokens:.0f}-token "
            f"prompt needs {model.prefill_service() * 1e3:.0f}ms of prefill plus queueing"
        )
        rate = 1.0 / (model.prefill_service() + model.decode_cost(batch))
    return SloCapacity(batch, model.itl_p99(batch), rate, problem)
