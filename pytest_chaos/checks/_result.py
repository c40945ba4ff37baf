"""The result every check produces, whatever its verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult"]


@dataclass(frozen=True)
class CheckResult:
    """What a check measured, what it allowed, and its verdict.

    ``measured`` and ``allowed`` are JSON-safe dicts of numbers (seconds, ratios,
    counts); ``message`` is the one-line human verdict that also goes into the
    AssertionError when ``passed`` is false.
    """

    name: str
    passed: bool
    measured: dict[str, Any] = field(default_factory=dict)
    allowed: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    duration: float = 0.0
    target: str = ""

    def event_data(self) -> dict[str, Any]:
        """The ``data`` of the timeline ``check`` event for this result."""
        return {
            "passed": self.passed,
            "measured": dict(self.measured),
            "allowed": dict(self.allowed),
            "message": self.message,
            "duration": round(self.duration, 6),
        }
