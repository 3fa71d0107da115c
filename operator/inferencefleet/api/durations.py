"""Kubernetes-style duration strings ("800ms", "2m", "1h30m") as seconds.

Go's ``time.ParseDuration`` grammar without a sign: one or more ``<number><unit>`` groups,
units ns, us, ms, s, m, h. Models hold the value in seconds (a float) and serialise it back
to the shortest exact string, so YAML round trips are stable.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

UNITS: dict[str, float] = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"
_GROUP = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
_WHOLE = re.compile(PATTERN)


def parse_duration(text: str) -> float:
    """Seconds in a duration string; ValueError names what is allowed."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text):
        raise ValueError(
            f"must be a duration string such as '800ms', '30s', '2m' or '1h30m' "
            f"(units ns, us, ms, s, m, h), got {text!r}"
        )
    return sum(float(number) * UNITS[unit] for number, unit in _GROUP.findall(text))


def format_duration(seconds: float) -> str:
    """The shortest readable string for ``seconds`` (to the microsecond of its unit); stable after one round."""
    if seconds == 0:
        return "0s"
    unit = "ns"
    for unit in ("s", "ms", "us", "ns"):
        if seconds / UNITS[unit] >= 1:
            break
    text = f"{seconds / UNITS[unit]:.6f}".rstrip("0").rstrip(".")
    if unit == "s" and "." not in text and int(text) % 60 == 0:
        hours, rest = divmod(int(text), 3600)
        minutes, secs = divmod(rest, 60)
        return "".join(f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v)
    return f"{text}{unit}"


def _coerce(value: Any) -> float:
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"must be a duration string such as '800ms' or '2m', got {value!r}")


Duration = Annotated[
    float,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": PATTERN}),
]
"""A duration held in seconds, written as a Kubernetes-style string."""
