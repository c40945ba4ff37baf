from __future__ import annotations

import pytest_chaos


def test_errors_are_one_tree_and_hypotheses_are_assertions() -> None:
    assert issubclass(pytest_chaos.HypothesisViolated, AssertionError)
    for name in pytest_chaos.__all__:
        if name.endswith("Error") or name in {"InjectionVetoed", "SteadyStateNotMet"}:
            assert issubclass(getattr(pytest_chaos, name), pytest_chaos.ChaosError), name


def test_plugin_core_names_are_public_and_resolve() -> None:
    core = {"BlastRadius", "Chaos", "ChaosProxy", "Fault", "ToxiproxyClient"}
    assert core <= set(pytest_chaos.__all__)
    for name in pytest_chaos.__all__:
        if name != "__version__":
            assert getattr(pytest_chaos, name).__name__ == name, name
    from pytest_chaos.experiment._chaos import Chaos, ChaosProxy, Fault

    assert (pytest_chaos.Chaos, pytest_chaos.ChaosProxy, pytest_chaos.Fault) == (
        Chaos,
        ChaosProxy,
        Fault,
    )


def test_hooks_are_the_documented_ones() -> None:
    from pytest_chaos.plugin import hookspecs

    hooks = sorted(n for n in dir(hookspecs) if n.startswith("pytest_chaos_"))
    assert hooks == [
        "pytest_chaos_abort",
        "pytest_chaos_after_check",
        "pytest_chaos_after_heal",
        "pytest_chaos_after_inject",
        "pytest_chaos_after_proxy",
        "pytest_chaos_before_inject",
        "pytest_chaos_explore_faults",
        "pytest_chaos_register_toxics",
    ]


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pytest_chaos.plugin; "
        "[__import__(m) for m in pytest_chaos.plugin.pytest_plugins]; "
        "heavy = ['asyncio', 'docker', 'testcontainers', 'allure', 'yaml', 'h11', "
        "'pytest_chaos.proxy._server', 'pytest_chaos.experiment._chaos', 'http.client']; "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
