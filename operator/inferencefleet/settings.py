"""Operator settings from the environment (the Helm chart sets them; ``inferencefleet run`` flags too).

Every setting has one environment variable; a bad value is a one-line error naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .api.durations import parse_duration
from .errors import UserError
from .render.options import DEFAULT_IMAGES, RenderOptions

ENV: dict[str, str] = {
    "prometheus_url": "PROMETHEUS_URL",
    "prometheus_bearer_token_file": "PROMETHEUS_BEARER_TOKEN_FILE",
    "prometheus_ca_file": "PROMETHEUS_CA_FILE",
    "prometheus_timeout": "INFERENCEFLEET_PROMETHEUS_TIMEOUT",
    "tick_interval": "INFERENCEFLEET_TICK_INTERVAL",
    "namespace": "INFERENCEFLEET_NAMESPACE",
    "signals_window": "INFERENCEFLEET_SIGNALS_WINDOW",
    "stale_after": "INFERENCEFLEET_SIGNALS_STALE_AFTER",
    "scrape_interval": "INFERENCEFLEET_SCRAPE_INTERVAL",
    "vllm_image": "INFERENCEFLEET_VLLM_IMAGE",
    "trtllm_image": "INFERENCEFLEET_TRTLLM_IMAGE",
}
"""Setting -> environment variable."""

DURATIONS = ("prometheus_timeout", "tick_interval", "signals_window", "stale_after")


class OperatorSettings(BaseModel):
    """How the operator runs: where signals come from, how often it decides, which namespaces it serves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prometheus_url: str | None = None
    """Prometheus base URL; unset means no signals (every pool reports MetricsAvailable False)."""
    prometheus_bearer_token_file: str | None = None
    """File with a bearer token for Prometheus (re-read every query)."""
    prometheus_ca_file: str | None = None
    """CA bundle for Prometheus's TLS certificate."""
    prometheus_timeout: float = Field(default=5.0, gt=0)
    """Per-query timeout in seconds."""
    tick_interval: float = Field(default=5.0, gt=0, le=3600)
    """Seconds between fleet ticks (signals, planner, actions) for all pools together."""
    namespace: str | None = None
    """Serve only this namespace (None: all namespaces)."""
    signals_window: float = Field(default=60.0, gt=0)
    """Rate and quantile window of the Prometheus queries, in seconds."""
    stale_after: float = Field(default=120.0, gt=0)
    """A pool whose last scrape is older than this has no signals."""
    scrape_interval: str = Field(default="5s", pattern=r"^[0-9]+(ms|s|m)$")
    """PodMonitor scrape interval of the rendered pools (Prometheus duration)."""
    vllm_image: str = DEFAULT_IMAGES["vllm"]
    """vLLM image for pools that set no engine.image."""
    trtllm_image: str = DEFAULT_IMAGES["trtllm"]
    """TensorRT-LLM image for pools that set no engine.image."""

    @field_validator("prometheus_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """Settings from environment variables; an empty variable counts as unset."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in ENV.items():
            text = environ.get(variable, "").strip()
            if not text:
                continue
            if name in DURATIONS:
                try:
                    values[name] = parse_duration(text)
                except ValueError as error:
                    raise UserError(f"{variable}: {error}") from None
            else:
                values[name] = text
        try:
            return cls(**values)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            variable = ENV[str(first["loc"][0])]
            message = str(first["msg"]).removeprefix("Value error, ")
            raise UserError(f"{variable}: {message} (got {values[str(first['loc'][0])]!r})") from None

    def render_options(self, dollars_per_gpu_hour: float | None = None, owner_uid: str | None = None) -> RenderOptions:
        """RenderOptions for one pool."""
        return RenderOptions(
            images={"vllm": self.vllm_image, "trtllm": self.trtllm_image},
            scrape_interval=self.scrape_interval,
            owner_uid=owner_uid,
            dollars_per_gpu_hour=dollars_per_gpu_hour,
        )
