"""Errors for pools that cannot be rendered as asked."""

from __future__ import annotations

from ..errors import InvalidInput


class RenderError(InvalidInput):
    """An infeasible or unsupported pool spec: names the field, the value and what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
