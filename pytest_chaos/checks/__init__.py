"""Resilience hypotheses (checks), also reachable as ``chaos.<check>``.

Every check is a plain function usable without the plugin (pass ``timeline=`` to
record on a :class:`~pytest_chaos.Timeline`), and a method of the ``chaos`` fixture:
``chaos.<check>(...)`` is the same function with the test's experiment as ``context``
(see :class:`CheckContext`). A violated hypothesis raises the check's own
:class:`~pytest_chaos.errors.HypothesisViolated` subclass (an ``AssertionError``) whose
message carries the measured numbers against the allowed ones; a check that could not
run raises :class:`~pytest_chaos.errors.CheckError`.

==================  ===========================================  =======================
check               hypothesis                                   violation
==================  ===========================================  =======================
steady_state        error rate and p50/p95/p99 within bounds     SteadyStateViolated
observe             the same, during a ``with`` block            SteadyStateViolated
guard               background abort condition (heals all)       GuardTripped
circuit_breaker     opens, fails fast, half-opens, closes        CircuitBreakerViolated
retries             attempts per logical call at the proxy       RetriesViolated
idempotent          duplicates do not change the state again     IdempotencyViolated
recovers            k successes in a row within N s of heal      RecoveryViolated
compare             experiment no worse than control, by tests   ComparisonViolated
History.check       no acknowledged write lost or duplicated     HistoryViolated
==================  ===========================================  =======================
"""

from __future__ import annotations

from pytest_chaos.checks._adapters import BreakerWatch, Transition, watch_breaker
from pytest_chaos.checks._breaker import circuit_breaker
from pytest_chaos.checks._compare import Comparison, compare
from pytest_chaos.checks._context import CheckContext
from pytest_chaos.checks._errors import (
    CircuitBreakerViolated,
    ComparisonAborted,
    ComparisonViolated,
    GuardTripped,
    HistoryViolated,
    IdempotencyViolated,
    RecoveryViolated,
    RetriesViolated,
    SteadyStateViolated,
)
from pytest_chaos.checks._guard import Guard, guard
from pytest_chaos.checks._history import History, Op
from pytest_chaos.checks._idempotent import idempotent
from pytest_chaos.checks._recovers import recovers
from pytest_chaos.checks._result import CheckResult
from pytest_chaos.checks._retries import retries
from pytest_chaos.checks._steady import Observation, observe, steady_state

__all__ = [
    "BreakerWatch",
    "CheckContext",
    "CheckResult",
    "CircuitBreakerViolated",
    "Comparison",
    "ComparisonAborted",
    "ComparisonViolated",
    "Guard",
    "GuardTripped",
    "History",
    "HistoryViolated",
    "IdempotencyViolated",
    "Observation",
    "Op",
    "RecoveryViolated",
    "RetriesViolated",
    "SteadyStateViolated",
    "Transition",
    "circuit_breaker",
    "compare",
    "guard",
    "idempotent",
    "observe",
    "recovers",
    "retries",
    "steady_state",
    "watch_breaker",
]
