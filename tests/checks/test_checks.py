from __future__ import annotations

import pytest

import pytest_chaos
import pytest_chaos.checks as checks
from pytest_chaos.errors import CheckError, HypothesisViolated

VIOLATIONS = [
    "CircuitBreakerViolated",
    "ComparisonViolated",
    "GuardTripped",
    "HistoryViolated",
    "IdempotencyViolated",
    "RecoveryViolated",
    "RetriesViolated",
    "SteadyStateViolated",
]


def test_the_checks_module_surface() -> None:
    assert set(checks.__all__) == {
        *VIOLATIONS,
        "BreakerWatch",
        "CheckResult",
        "CheckContext",
        "Comparison",
        "ComparisonAborted",  # a ComparisonViolated: the kill switch fired
        "Guard",
        "History",
        "Observation",
        "Op",
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
    }
    for name in checks.__all__:
        assert getattr(checks, name).__name__ == name


@pytest.mark.parametrize("name", VIOLATIONS)
def test_each_violation_is_a_distinct_assertion_error_exported_at_the_top(name: str) -> None:
    cls = getattr(pytest_chaos, name)
    assert cls is getattr(checks, name)
    assert issubclass(cls, HypothesisViolated) and issubclass(cls, AssertionError)
    assert not issubclass(cls, CheckError)
    others = [getattr(checks, n) for n in VIOLATIONS if n != name]
    assert not any(issubclass(cls, o) for o in others)


@pytest.mark.parametrize(
    "name",
    [
        "steady_state",
        "observe",
        "guard",
        "circuit_breaker",
        "retries",
        "idempotent",
        "recovers",
        "watch_breaker",
        "compare",
    ],
)
def test_chaos_methods_are_the_check_functions_with_one_signature(name: str) -> None:
    """``chaos.<check>`` is the function itself, bound to the experiment: same
    signature, same docstring, nothing restated."""
    import inspect

    from pytest_chaos.experiment import Chaos

    function = getattr(checks, name)
    method = getattr(Chaos, name)
    assert method is function
    assert inspect.signature(method) == inspect.signature(function)
    assert "context" in inspect.signature(function).parameters
    assert Chaos.history is checks.History
    assert not [base for base in Chaos.__mro__ if base.__name__.endswith("Mixin")]
