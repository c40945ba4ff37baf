"""Hook specifications of pytest-chaos (pluggy, ``pytest_chaos_*``).

Implement them in a ``conftest.py`` or a plugin like any pytest hook. Grouped by the
phase of an experiment:

- registration: :func:`pytest_chaos_register_toxics`
- injection: :func:`pytest_chaos_before_inject` (may veto), :func:`pytest_chaos_after_inject`
- healing: :func:`pytest_chaos_after_heal`
- verdicts: :func:`pytest_chaos_after_check`, :func:`pytest_chaos_abort`
- proxies: :func:`pytest_chaos_after_proxy`
- exploration: :func:`pytest_chaos_explore_faults` (extends the default fault catalogue)

Example, refusing any fault on ``postgres`` during business hours::

    def pytest_chaos_before_inject(chaos, target, kind, attributes):
        if target == "postgres" and is_business_hours():
            return "no postgres faults during business hours"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_chaos.checks import CheckResult
    from pytest_chaos.experiment import Chaos, ChaosProxy, Fault

hookspec = pytest.hookspec


@hookspec
def pytest_chaos_register_toxics(register: Any, config: pytest.Config) -> None:
    """Register extra toxic types with the embedded proxy.

    Called once per process, just before the embedded server starts, with the toxic
    registry's ``register`` function (``pytest_chaos.toxics.register_toxic``). Call
    ``register(MyToxic)`` for each toxic class. External Toxiproxy servers are not
    affected: register toxics there through Toxiproxy itself.
    """


@hookspec(firstresult=True)
def pytest_chaos_before_inject(
    chaos: Chaos, target: str, kind: str, attributes: dict[str, Any]
) -> str | None:
    """Called before a fault is applied, after the blast radius allowed it.

    Return a non-empty string to veto the injection: the test then errors with
    :class:`pytest_chaos.InjectionVetoed` carrying that reason. Return ``None`` to allow.
    The first implementation that returns a reason wins.
    """


@hookspec
def pytest_chaos_after_inject(chaos: Chaos, fault: Fault) -> None:
    """Called after a fault was applied and recorded on the timeline."""


@hookspec
def pytest_chaos_after_heal(chaos: Chaos, fault: Fault, by: str) -> None:
    """Called after a fault was healed.

    ``by`` says who healed it: ``"test"``, ``"teardown"``, ``"safety_timer"``,
    ``"guard"`` or ``"session"``.
    """


@hookspec
def pytest_chaos_after_check(chaos: Chaos, result: CheckResult) -> None:
    """Called after a check (hypothesis) produced its verdict, passed or not."""


@hookspec
def pytest_chaos_abort(chaos: Chaos, reason: str, healed: list[Fault]) -> None:
    """Called when an experiment is aborted (a guard fired or ``chaos.abort()``)."""


@hookspec
def pytest_chaos_after_proxy(chaos: Chaos, proxy: ChaosProxy) -> None:
    """Called after ``chaos.proxy(name, ...)`` created a proxy on the server.

    Exploration (``@pytest.mark.chaos_explore``) uses it to inject the cell's fault into
    a proxy the scenario creates while it runs.
    """


@hookspec
def pytest_chaos_explore_faults(config: pytest.Config, target: str, kind: str) -> list[str] | None:
    """Extend the default fault catalogue of exploration for one target.

    ``kind`` is ``"tcp"`` or ``"http"`` (as the ``chaos_explore`` marker declares the
    target). Return fault strings (``"latency:2s"``, ``"http_error:502"``) to add to the
    defaults, or ``None``. Every implementation's strings are added, in order, without
    repeats. Used only when the marker gives no ``faults=``.
    """
