from __future__ import annotations

import pytest_chaos


def test_errors_are_one_tree_and_hypotheses_are_assertions() -> None:
    assert issubclass(pytest_chaos.HypothesisViolated, AssertionError)
    for name in pytest_chaos.__all__:
        if name.endswith("Error") or name in {"InjectionVetoed", "SteadyStateNotMet"}:
            assert issubclass(getattr(pytest_chaos, name), pytest_chaos.ChaosError), name
