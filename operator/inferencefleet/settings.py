"""Operator settings from the environment (the Helm chart sets them; ``inferencefleet run`` flags too).

Every setting has one environment variable; a bad value is a one-line error naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .api.durations import parse_duration
from .errors import UserError
from .redaction import redact
from .render.options import DEFAULT_IMAGES, RenderOptions

ENV: dict[str, str] = {
    "prometheus_url": "PROMETHEUS_URL",
    "prometheus_bearer_token_file": "PROMETHEUS_BEARER_TOKEN_FILE",
    "prometheus_username": "PROMETHEUS_USERNAME",
    "prometheus_password_file": "PROMETHEUS_PASSWORD_FILE",
    "prometheus_ca_file": "PROMETHEUS_CA_FILE",
    "prometheus_insecure_skip_tls_verify": "PROMETHEUS_INSECURE_SKIP_TLS_VERIFY",
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
BOOLEANS = ("prometheus_insecure_skip_tls_verify",)
TRUTH = {"true": True, "1": True, "false": False, "0": False}
"""Accepted spellings of a boolean variable (any case)."""


def read_password(path: str, name: str) -> str:
    """The password in file ``path`` (surrounding whitespace stripped); errors name ``name`` and the path."""
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise UserError(f"{name} {path}: cannot be read: {error.strerror}") from None


class OperatorSettings(BaseModel):
    """How the operator runs: where signals come from, how often it decides, which namespaces it serves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prometheus_url: str | None = None
    """Prometheus base URL; unset means no signals (every pool reports MetricsAvailable False)."""
    prometheus_bearer_token_file: str | None = None
    """File with a bearer token for Prometheus (re-read every query)."""
    prometheus_username: str | None = None
    """Basic-auth username for Prometheus (with prometheus_password_file)."""
    prometheus_password_file: str | None = None
    """File with the basic-auth password (read once at startup; never an environment variable)."""
    prometheus_ca_file: str | None = None
    """CA bundle for Prometheus's TLS certificate."""
    prometheus_insecure_skip_tls_verify: bool = False
    """Do not verify Prometheus's TLS certificate."""
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

    @model_validator(mode="after")
    def _auth(self) -> OperatorSettings:
        """Basic auth needs both its variables and excludes a bearer token."""
        if (self.prometheus_username is None) != (self.prometheus_password_file is None):
            raise ValueError(f"{ENV['prometheus_username']} and {ENV['prometheus_password_file']}: set both or neither")
        if self.prometheus_bearer_token_file is not None and self.prometheus_username is not None:
            raise ValueError(f"{ENV['prometheus_bearer_token_file']} and {ENV['prometheus_username']}: "
                             "use a bearer token or basic auth, not both")
        if self.prometheus_url and urlsplit(self.prometheus_url).username is not None and (
                self.prometheus_username is not None or self.prometheus_bearer_token_file is not None):
            raise ValueError(f"{ENV['prometheus_url']} holds a user: set no {ENV['prometheus_username']} "
                             f"or {ENV['prometheus_bearer_token_file']} beside it")
        return self

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
            elif name in BOOLEANS:
                if text.lower() not in TRUTH:
                    raise UserError(f"{variable}: must be true, false, 1 or 0, got {text!r}")
                values[name] = TRUTH[text.lower()]
            else:
                values[name] = text
        try:
            return cls(**values)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            message = str(first["msg"]).removeprefix("Value error, ")
            if not first["loc"]:  # a rule across variables: the message names them
                raise UserError(message) from None
            variable = ENV[str(first["loc"][0])]
            raise UserError(f"{variable}: {message} (got {redact(repr(values[str(first['loc'][0])]))})") from None

    def prometheus_basic_auth(self) -> tuple[str, str] | None:
        """(username, password) for Prometheus, the password read from its file now; None without basic auth."""
        if self.prometheus_username is None or self.prometheus_password_file is None:
            return None
        return self.prometheus_username, read_password(self.prometheus_password_file, ENV["prometheus_password_file"])

    def render_options(self, dollars_per_gpu_hour: float | None = None, owner_uid: str | None = None) -> RenderOptions:
        """RenderOptions for one pool."""
        return RenderOptions(
            images={"vllm": self.vllm_image, "trtllm": self.trtllm_image},
            scrape_interval=self.scrape_interval,
            owner_uid=owner_uid,
            dollars_per_gpu_hour=dollars_per_gpu_hour,
        )
