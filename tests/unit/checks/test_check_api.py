from __future__ import annotations

import pytest

import pytest_chaos
import pytest_chaos.checks as checks
from pytest_chaos.errors import CheckError, HypothesisViolated

VIOLATIONS = [
    "CircuitBreakerViolated",
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
        "ChecksMixin",
        "Guard",
        "History",
        "Observation",
        "Op",
        "Transition",
        "circuit_breaker",
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


def test_the_controller_inherits_the_checks() -> None:
    from pytest_chaos.controller import Chaos

    assert issubclass(Chaos, checks.ChecksMixin)
    for method in ("steady_state", "observe", "guard", "circuit_breaker", "retries"):
        assert callable(getattr(Chaos, method))
    for method in ("idempotent", "recovers", "history", "watch_breaker"):
        assert callable(getattr(Chaos, method))


@pytest.mark.parametrize(
    "name",
    ["steady_state", "observe", "guard", "circuit_breaker", "retries", "idempotent", "recovers"],
)
def test_methods_take_the_functions_arguments_with_the_same_defaults(name: str) -> None:
    import inspect

    # what the controller supplies (before_faults: from the test's own timeline)
    internal = {"timeline", "finish", "on_breach", "record_abort", "active", "before_faults"}
    function = inspect.signature(getattr(checks, name)).parameters
    method = inspect.signature(getattr(checks.ChecksMixin, name)).parameters
    expected = {k: p.default for k, p in function.items() if k not in internal}
    got = {k: p.default for k, p in method.items() if k != "self" and k != "only_while_faults"}
    assert got == expected
