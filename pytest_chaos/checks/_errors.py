"""One ``HypothesisViolated`` subclass per check, so a report can tell them apart.

All of them are ``AssertionError`` subclasses (through ``HypothesisViolated``): a
violated hypothesis is a test *failure*. A check that could not run raises
``CheckError`` instead, which is an *error*.
"""

from __future__ import annotations

from pytest_chaos.errors import HypothesisViolated

__all__ = [
    "CircuitBreakerViolated",
    "ComparisonAborted",
    "ComparisonViolated",
    "GuardTripped",
    "HistoryViolated",
    "IdempotencyViolated",
    "RecoveryViolated",
    "RetriesViolated",
    "SteadyStateViolated",
]


class SteadyStateViolated(HypothesisViolated):
    """Error rate or a latency percentile went over its tolerance during or after faults."""


class GuardTripped(HypothesisViolated):
    """A guard's abort condition was breached; every fault was healed and the test aborted."""


class CircuitBreakerViolated(HypothesisViolated):
    """The breaker did not open in time, did not fail fast, or never closed again."""


class RetriesViolated(HypothesisViolated):
    """Too many attempts reached the dependency per logical call (a retry storm)."""


class IdempotencyViolated(HypothesisViolated):
    """A duplicated action changed the observable state again."""


class RecoveryViolated(HypothesisViolated):
    """The system did not recover within the allowed time after the last heal."""


class HistoryViolated(HypothesisViolated):
    """Acknowledged writes were lost, or writes appear more often than performed."""


class ComparisonViolated(HypothesisViolated):
    """The experiment group degraded beyond its budget, significantly, against the control."""


class ComparisonAborted(ComparisonViolated):
    """The experiment group breached ``abort_when``: its faults were healed at once."""
