"""The result every check produces, whatever its verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_chaos.errors import HypothesisViolated

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
    #: the check's own HypothesisViolated subclass, raised when ``passed`` is false
    violation: type[HypothesisViolated] = field(default=HypothesisViolated, compare=False)

    def exception(self) -> HypothesisViolated:
        """The exception that reports this result as a failure (whatever ``passed`` says)."""
        return self.violation(self.message, measured=self.measured, allowed=self.allowed)

    def raise_if_failed(self) -> None:
        """Raise :meth:`exception` when the hypothesis did not hold."""
        if not self.passed:
            raise self.exception()

    def event_data(self) -> dict[str, Any]:
        """The ``data`` of the timeline ``check`` event for this result."""
        return {
            "passed": self.passed,
            "measured": dict(self.measured),
            "allowed": dict(self.allowed),
            "message": self.message,
            "duration": round(self.duration, 6),
        }
