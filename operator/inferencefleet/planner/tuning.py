"""Every constant the planner's decisions depend on, in one documented value: ``PlannerTuning``.

Each section belongs to one estimator of the pool's memory (see ``controller``). Each value says where
it comes from: an engine or Prometheus fact, a property of the signals, or a fit on the tuning set
(the Azure 2023 traces at seeds 1 and 2 and the generated families of ``sim.scenarios``; never the
report seeds). ``benchmarks/sensitivity.py`` sweeps every field by +-50% and shows which ones the
results depend on. Numerical settings (bisection depth, tolerances) and facts of the rendered
workloads (CUDA-graph step, rollout surge) are not tuning and stay in their modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class ForecastTuning:
    """Demand forecast (planner.forecast): Holt's level and damped trend, spike bound and burst envelope."""

    level_tau_s: float = 30.0
    """Time constant of the smoothed arrival rate: about two scrape-and-rate windows (signals)."""
    trend_tau_s: float = 120.0
    """Time constant of the slope: four level constants, so one noisy window makes no slope (fit)."""
    trend_reach_s: float = 60.0
    """How far ahead a slope is extrapolated at most: one rate window (signals)."""
    trend_warmup_s: float = 240.0
    """Traffic a pool serves before its slope is learned: two trend constants, past the rate window and
    the longest requests' completions (fit on the tuning set's cold starts)."""
    spike_max: float = 2.25
    """Most the instantaneous arrival rate counts for, in multiples of the smoothed level (fit on the
    Azure code trace, tuning seeds)."""
    burst_tau_s: float = 600.0
    """How slowly the demand's peak is forgotten: ten minutes of traffic (fit)."""
    burst_mean_tau_s: float = 60.0
    """Time constant of the mean the peak is compared with: one rate window (signals)."""


@dataclass(frozen=True)
class ShapeTuning:
    """Request shape (planner.request_shape): the mean prompt and output lengths the plan sizes for."""

    length_tau_s: float = 300.0
    """Time constant of the smoothed token rates: five rate windows (fit on the conversation trace)."""
    min_window_requests: float = 50.0
    """Fewest requests a rate window counts before its mean lengths count at once: the standard error of
    a mean over 50 heavy-tailed prompts (coefficient of variation 1.5) is about a fifth."""
    default_prompt_tokens: float = 1024.0
    """Prompt length planned for until one is measured (Azure 2023 conversation trace: p50 1,020)."""
    default_output_tokens: float = 256.0
    """Output length planned for until one is measured (conversation trace p50 129, doubled: outputs
    vary more across workloads than prompts)."""


@dataclass(frozen=True)
class CorrectionTuning:
    """Online correction of the capacity model (planner.correction) from the observed p99s."""

    alpha: float = 0.2
    """Share of the way each informative tick moves a multiplier (EWMA weight; fit)."""
    low: float = 0.9
    """Least multiplier: the calibrated H100 prefill throughput spreads +-7% over prompt lengths, so an
    engine more than 10% faster than its profile is implausible (calibration)."""
    high: float = 3.0
    """Largest multiplier: an engine three times slower than its profile is a broken node, not a model
    error (calibration)."""
    step_floor: float = 1.0
    """Least step multiplier an observed p99 ITL teaches: the modelled p99 step is an envelope, so a
    lower p99 says the envelope is loose, not that decoding is faster (fit)."""
    min_load: float = 0.3
    """Least prefill-server utilization at which a p99 TTFT measures the prefill speed (fit)."""
    min_sensitivity: float = 0.1
    """Least relative rise of the predicted p99 TTFT for a 25% slower prefill for a p99 TTFT to teach
    the prefill multiplier (fit)."""


@dataclass(frozen=True)
class HeadroomTuning:
    """SLO headroom (planner.headroom): more replicas per unit of demand while observed p99s break the SLOs."""

    max: float = 1.5
    """Most headroom: beyond it more replicas rarely fix a p99 (the engine or the SLO is the problem)."""
    rise_per_s: float = 0.006
    """Rise per second at twice the SLO: a minute at 2x is worth +0.36 (fit)."""
    fall_per_s: float = 0.000125
    """Fall per second while every p99 is well below its SLO: 40 minutes from 1.3 back to 1, so a
    bursty pool keeps its headroom until its next burst (fit)."""
    relax: float = 0.75
    """Headroom is given back only while every observed p99 is below this share of its SLO (fit)."""


@dataclass(frozen=True)
class ScaleTuning:
    """Scale decision (planner.autoscale): the scale-down window and the backlog hold."""

    default_scale_down_delay_s: float = 120.0
    """Shortest scale-down delay when behavior.scaleDownDelay is unset: the break-even of keeping an idle
    replica against restarting it (cost model)."""
    backlog_per_replica: float = 1.5
    """Requests waiting per ready replica beyond which they are a backlog (it holds a scale-down and
    teaches no corrections); fewer are the prompts the next steps take (fit on the tuning set)."""
    burst_hold_max: float = 5.0
    """Most cold starts a bursty pool's scale-down is held beyond its delay (fit)."""
    give_back_after_s: float = 30.0
    """A load-tested pool gives back replicas still starting once the ideal has not needed them for this
    long plus the burst hold, so that a rate hovering at a replica boundary does not order and cancel a
    replica every tick; a longer wait keeps more replicas that climbs did not need (fit on the tuning set;
    docs/tuning.md)."""
    climb_margin_per_minute: float = 0.06
    """A pool with spec.capacity.loadTest plans 1 + this x its cold start in minutes less per replica, for
    demand that climbs while new replicas start: 1.06 for a 60 s cold start, 1.3 for 300 s (fit on the
    tuning set together with giving back replicas still starting, chosen on a held-out seed; docs/tuning.md)."""


@dataclass(frozen=True)
class BatchingTuning:
    """Batching policy (planner.batching): when a --max-num-seqs rollout is worth a rolling restart."""

    itl_margin: float = 0.9
    """Plan the p99 ITL at this share of its SLO (fit)."""
    min_step: float = 0.25
    """Least relative change of max-num-seqs worth a restart."""
    amortization_s: float = 3600.0
    """A rollout must pay back its restarts within this much saved GPU time (cost model: one hour)."""
    cooldown_s: float = 1800.0
    """Least time between rollouts (or ten cold starts, if longer)."""


@dataclass(frozen=True)
class SignalTuning:
    """Signal checks (planner.signal_checks, planner.clock) and the measured cold start."""

    stale_after_s: float = 90.0
    """A demand signal older than this is stale: three 30 s scrape intervals (Prometheus)."""
    scrape_grace_s: float = 60.0
    """How long a newly ready replica may go unscraped: two 30 s scrape intervals (Prometheus)."""
    clock_step_factor: float = 4.0
    """A gap between ticks longer than this many usual intervals is a clock step, not a slow tick."""
    latency_window_s: float = 60.0
    """The p99s are quantiles over this window (signals.promql): for that long after a backlog or a change
    in ready replicas they still carry the waits or the load per replica of before."""
    cold_start_alpha: float = 0.5
    """Weight of each newly measured cold start in the smoothed one (EWMA)."""


@dataclass(frozen=True)
class PlannerTuning:
    """All tuned constants of the planner, by estimator."""

    forecast: ForecastTuning = field(default_factory=ForecastTuning)
    shape: ShapeTuning = field(default_factory=ShapeTuning)
    correction: CorrectionTuning = field(default_factory=CorrectionTuning)
    headroom: HeadroomTuning = field(default_factory=HeadroomTuning)
    scale: ScaleTuning = field(default_factory=ScaleTuning)
    batching: BatchingTuning = field(default_factory=BatchingTuning)
    signals: SignalTuning = field(default_factory=SignalTuning)

    def __post_init__(self) -> None:
        for path, value in self.values().items():
            if not value > 0:
                raise ValueError(f"planner tuning {path} must be > 0, got {value!r}")
        if not self.correction.low <= 1.0 <= self.correction.high:
            raise ValueError(f"planner tuning correction.low ({self.correction.low}) and correction.high "
                             f"({self.correction.high}) must enclose 1")
        if self.headroom.max < 1.0:
            raise ValueError(f"planner tuning headroom.max must be >= 1, got {self.headroom.max}")

    def values(self) -> dict[str, float]:
        """Every value by its dotted path ('forecast.level_tau_s': 30.0, ...)."""
        return {f"{section.name}.{value.name}": getattr(getattr(self, section.name), value.name)
                for section in fields(self) for value in fields(getattr(self, section.name))}

    def with_value(self, path: str, value: float) -> PlannerTuning:
        """A copy with the value at the dotted ``path`` replaced (ValueError naming the allowed paths)."""
        section, _, name = path.partition(".")
        if path not in self.values():
            raise ValueError(f"unknown planner tuning {path!r}; allowed: {', '.join(self.values())}")
        changed: Any = replace(getattr(self, section), **{name: value})
        return replace(self, **{section: changed})


DEFAULT_TUNING = PlannerTuning()
"""The tuning the operator runs with."""
