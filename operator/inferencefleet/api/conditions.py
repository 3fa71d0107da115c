"""Status conditions per the Kubernetes API conventions: types, reasons, and a change-aware setter."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import ApiModel

# Condition types (adjectives / past participles, never phases).
READY = "Ready"
SPEC_VALID = "SpecValid"
METRICS_AVAILABLE = "MetricsAvailable"
SLO_MET = "SLOMet"
QUOTA_LIMITED = "QuotaLimited"
PROGRESSING = "Progressing"
OVER_BUDGET = "OverBudget"
RECONCILED = "Reconciled"
PAUSED = "Paused"

MESSAGE_LIMIT = 1024


class Condition(ApiModel):
    """One condition (metav1.Condition)."""

    type: str = Field(min_length=1, max_length=316, pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    """CamelCase condition type, e.g. 'Ready'."""
    status: Literal["True", "False", "Unknown"]
    """'True', 'False' or 'Unknown'."""
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    """CamelCase reason for the last transition."""
    message: str = Field(default="", max_length=32768)
    """Human-readable detail."""
    lastTransitionTime: str
    """When status last changed (RFC 3339)."""
    observedGeneration: int | None = Field(default=None, ge=0)
    """metadata.generation the condition was computed for."""


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: Literal["True", "False", "Unknown"],
    reason: str,
    message: str,
    now: str,
    generation: int | None,
) -> tuple[list[Condition], bool]:
    """Return ``conditions`` with ``type_`` set, and whether anything changed.

    ``lastTransitionTime`` moves only when the status flips, so repeated ticks with the same
    verdict write nothing.
    """
    message = message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 3] + "..."
    old = next((c for c in conditions if c.type == type_), None)
    transition = now if old is None or old.status != status else old.lastTransitionTime
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        lastTransitionTime=transition,
        observedGeneration=generation,
    )
    if old == new:
        return conditions, False
    if old is None:
        return [*conditions, new], True
    return [new if c.type == type_ else c for c in conditions], True
