"""The exceptions pytest-chaos raises, under one root.

::

    ChaosError                         root of everything raised on purpose
    ├── ConfigurationError             bad option, ini key, marker argument or YAML file
    ├── BlastRadiusError               an injection outside the test's blast radius
    │                                  (or without the chaos marker, or over a limit)
    ├── InjectionError                 a fault could not be applied ("broken" in Allure)
    │   ├── InjectionVetoed            a pytest_chaos_before_inject hook said no
    │   └── UnsupportedByBackend       an embedded-only feature asked of another backend
    ├── ProxyAPIError                  the Toxiproxy API answered with an error status
    ├── RollbackError                  teardown found something this test left behind
    ├── ServiceError                   a dependency could not be started or is dead
    ├── CheckError                     a check could not run (bad arguments, probe crash)
    │   └── SteadyStateNotMet          the system was broken before any fault
    └── HypothesisViolated             (also an AssertionError) a check's verdict: the
        │                              system did not cope; the test fails
        └── (one subclass per check, in pytest_chaos.checks)

    ChaosUnavailable                   not a ChaosError but pytest's skip exception: the
                                       infrastructure of an experiment is missing here
                                       (raised by :func:`unavailable`); a skip, or an
                                       error under ``--chaos-strict``

Every message names the value, the rule and the fix.
"""

from __future__ import annotations

from typing import Any, NoReturn

# pytest.skip.Exception, named by its defining module because mypy cannot see a class
# behind the attribute of a function
from _pytest.outcomes import Skipped

__all__ = [
    "BlastRadiusError",
    "ChaosError",
    "ChaosUnavailable",
    "CheckError",
    "ConfigurationError",
    "HypothesisViolated",
    "InjectionError",
    "InjectionVetoed",
    "ProxyAPIError",
    "RollbackError",
    "ServiceError",
    "SteadyStateNotMet",
    "UnsupportedByBackend",
    "unavailable",
]


class ChaosError(Exception):
    """Root of every exception pytest-chaos raises on purpose."""


class ConfigurationError(ChaosError):
    """A bad option, ini key, marker argument or configuration file."""


class BlastRadiusError(ChaosError):
    """An injection that the test's blast radius does not allow."""


class InjectionError(ChaosError):
    """A fault could not be applied; the test is an error, not a failure."""


class InjectionVetoed(InjectionError):
    """A ``pytest_chaos_before_inject`` hook implementation refused the injection."""


class UnsupportedByBackend(InjectionError):
    """A feature only the embedded backend has was asked of another backend."""


class ProxyAPIError(ChaosError):
    """The Toxiproxy HTTP API answered with an error status.

    ``status`` is the HTTP status and ``error`` the server's message.
    """

    def __init__(self, message: str, *, status: int, error: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


class RollbackError(ChaosError):
    """Teardown found a proxy, toxic or container that this test left behind."""


class ServiceError(ChaosError):
    """A dependency could not be started, or died."""


class CheckError(ChaosError):
    """A check could not run: bad arguments, or a probe that crashed unexpectedly."""


class SteadyStateNotMet(CheckError):
    """The steady state did not hold before any fault was injected."""


class HypothesisViolated(ChaosError, AssertionError):
    """A resilience hypothesis did not hold. The message carries the measured numbers.

    ``measured`` and ``allowed`` hold the numbers behind the verdict.
    """

    def __init__(
        self,
        message: str,
        *,
        measured: dict[str, object] | None = None,
        allowed: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        # Any, not object: the values are the JSON numbers, lists and flags a check
        # measured, and a test compares them (``measured["attempts"] <= 3``).
        self.measured: dict[str, Any] = dict(measured or {})
        self.allowed: dict[str, Any] = dict(allowed or {})


class ChaosUnavailable(Skipped):
    """The infrastructure an experiment needs is not available on this machine.

    A subclass of pytest's skip exception, so the test is skipped like with
    ``pytest.skip``; under ``--chaos-strict`` (ini ``chaos_strict``,
    ``PYTEST_CHAOS_STRICT=1``) it is an error instead, because a gate must not pass on
    experiments that never ran. Raise it with :func:`unavailable`. Deliberately not a
    `ChaosError`: ``except Exception`` in a test must not swallow a skip.
    """


def unavailable(reason: str) -> NoReturn:
    """Skip the current test because its chaos infrastructure is missing here.

    Use it instead of ``pytest.skip`` wherever a test or fixture cannot run its
    experiment for want of something the machine lacks (a Docker engine, a server
    binary, a proxy feature), and say in ``reason`` what is missing and how to provide
    it. Without ``--chaos-strict`` the test is skipped with ``reason``; with it the test
    is an error with ``reason``. A plain ``pytest.skip`` stays a skip in both modes.
    """
    __tracebackhide__ = True
    if not isinstance(reason, str) or not reason.strip():
        raise TypeError(
            f"unavailable(reason={reason!r}): the reason must be a non-empty string naming "
            "what is missing and how to provide it."
        )
    # reported at the test's own location: the raise site is plugin code users did not write
    raise ChaosUnavailable(reason, _use_item_location=True)
