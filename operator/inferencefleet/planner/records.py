"""One planner decision and why, as it goes into a pool's status.decisions and Events."""

from __future__ import annotations

from dataclasses import dataclass

from ..api.v1alpha1 import Decision


@dataclass(frozen=True)
class DecisionRecord:
    """One action and why: ScaleUp, ScaleDown, Hold, SetMaxNumSeqs, KeepMaxNumSeqs."""

    action: str
    from_: int | None
    to: int | None
    reason: str

    def to_api(self, time: str, applied: bool) -> Decision:
        """The status.decisions entry for this record."""
        return Decision(time=time, action=self.action, from_=self.from_, to=self.to, reason=self.reason,
                        applied=applied)
