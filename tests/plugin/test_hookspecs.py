"""Each pytest_chaos_* hook, implemented in a conftest as a user would."""

from __future__ import annotations

import pytest

HOOKS_CONFTEST = """
import json
import pytest

CALLS = []


def pytest_chaos_before_inject(chaos, target, kind, attributes):
    CALLS.append(["before_inject", target, kind, attributes])
    if kind == "bandwidth":
        return "no bandwidth faults on this team's CI"
    return None


def pytest_chaos_after_inject(chaos, fault):
    CALLS.append(["after_inject", fault.id, fault.kind, fault.target])


def pytest_chaos_after_heal(chaos, fault, by):
    CALLS.append(["after_heal", fault.id, by])


def pytest_chaos_after_check(chaos, result):
    CALLS.append(["after_check", result.name, result.passed])


def pytest_chaos_abort(chaos, reason, healed):
    CALLS.append(["abort", reason, [f.id for f in healed]])


def pytest_chaos_register_toxics(register, config):
    from pytest_chaos.toxics import Stage, Toxic

    class HookNoop(Toxic):
        type_name = "hook_noop_for_tests"

        def start(self, link, now, previous):
            return Stage()

    register(HookNoop, replace=True)
    CALLS.append(["register_toxics", config.rootpath.name != ""])


def pytest_sessionfinish(session):
    with open(session.config.rootpath / "calls.json", "w") as out:
        json.dump(CALLS, out)
"""


def test_every_hook_is_called_with_its_arguments(chaos_pytester: pytest.Pytester) -> None:
    chaos_pytester.makeconftest(
        chaos_pytester.path.joinpath("conftest.py").read_text() + HOOKS_CONFTEST
    )
    chaos_pytester.makepyfile(
        """
        import pytest
        from pytest_chaos import InjectionVetoed, HypothesisViolated
        from pytest_chaos.checks._result import CheckResult

        @pytest.mark.chaos(blast_radius=["echo"])
        def test_it(chaos, echo, toxiproxy):
            proxy = chaos.proxy("echo", upstream=echo.address)
            with pytest.raises(InjectionVetoed, match="no bandwidth faults on this team's CI"):
                proxy.bandwidth(10)
            with proxy.latency(5):
                pass
            # a toxic type registered by the hook is usable through the generic method
            custom = proxy.toxic("hook_noop_for_tests")
            chaos.record_check(CheckResult(name="probe_ok", passed=True))
            with pytest.raises(HypothesisViolated, match="too slow"):
                chaos.record_check(CheckResult(name="probe_slow", passed=False, message="too slow"))
            chaos.abort("guard tripped")
            assert not custom.active and custom.healed_by == "guard"
        """
    )
    result = chaos_pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    import json

    calls = json.loads((chaos_pytester.path / "calls.json").read_text())
    assert calls == [
        ["register_toxics", True],
        ["before_inject", "echo", "bandwidth", {"rate": 10}],
        ["before_inject", "echo", "latency", {"latency": 5, "jitter": 0}],
        ["after_inject", "f1", "latency", "echo"],
        ["after_heal", "f1", "test"],
        ["before_inject", "echo", "hook_noop_for_tests", {}],
        ["after_inject", "f2", "hook_noop_for_tests", "echo"],
        ["after_check", "probe_ok", True],
        ["after_check", "probe_slow", False],
        ["after_heal", "f2", "guard"],
        ["abort", "guard tripped", ["f2"]],
    ]
