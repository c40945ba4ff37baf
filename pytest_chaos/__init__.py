"""pytest-chaos: chaos engineering for pytest.

Mark a test ``@pytest.mark.chaos(blast_radius=[...])``, put a fault proxy in front of
each dependency with the ``chaos`` fixture, inject faults and assert resilience
hypotheses. Every fault is rolled back at teardown. Where an experiment's
infrastructure is missing (no Docker, no server binary), ``pytest_chaos.unavailable(reason)``
skips the test, or makes it an error under ``--chaos-strict``.

Names are imported lazily so that ``import pytest_chaos`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "BlastRadius": "pytest_chaos.marker",
    "Chaos": "pytest_chaos.controller",
    "ChaosProxy": "pytest_chaos.controller",
    "Fault": "pytest_chaos.controller",
    "Duplicator": "pytest_chaos._messages",
    "ToxiproxyClient": "pytest_chaos.client",
    "EmbeddedServer": "pytest_chaos.proxy",
    "ChaosServices": "pytest_chaos.services",
    "Service": "pytest_chaos.services",
    "Event": "pytest_chaos._timeline",
    "Timeline": "pytest_chaos._timeline",
    "CheckResult": "pytest_chaos.checks",
    "CircuitBreakerViolated": "pytest_chaos.checks",
    "GuardTripped": "pytest_chaos.checks",
    "History": "pytest_chaos.checks",
    "HistoryViolated": "pytest_chaos.checks",
    "IdempotencyViolated": "pytest_chaos.checks",
    "RecoveryViolated": "pytest_chaos.checks",
    "RetriesViolated": "pytest_chaos.checks",
    "SteadyStateViolated": "pytest_chaos.checks",
    "ChaosError": "pytest_chaos.errors",
    "ChaosUnavailable": "pytest_chaos.errors",
    "unavailable": "pytest_chaos.errors",
    "BlastRadiusError": "pytest_chaos.errors",
    "CheckError": "pytest_chaos.errors",
    "ConfigurationError": "pytest_chaos.errors",
    "HypothesisViolated": "pytest_chaos.errors",
    "InjectionError": "pytest_chaos.errors",
    "InjectionVetoed": "pytest_chaos.errors",
    "ProxyAPIError": "pytest_chaos.errors",
    "RollbackError": "pytest_chaos.errors",
    "ServiceError": "pytest_chaos.errors",
    "SteadyStateNotMet": "pytest_chaos.errors",
    "UnsupportedByBackend": "pytest_chaos.errors",
}

__all__ = [
    "BlastRadius",
    "BlastRadiusError",
    "Chaos",
    "ChaosError",
    "ChaosProxy",
    "ChaosServices",
    "ChaosUnavailable",
    "CheckError",
    "CheckResult",
    "CircuitBreakerViolated",
    "ConfigurationError",
    "Duplicator",
    "EmbeddedServer",
    "Event",
    "Fault",
    "GuardTripped",
    "History",
    "HistoryViolated",
    "HypothesisViolated",
    "IdempotencyViolated",
    "InjectionError",
    "InjectionVetoed",
    "ProxyAPIError",
    "RecoveryViolated",
    "RetriesViolated",
    "RollbackError",
    "Service",
    "ServiceError",
    "SteadyStateNotMet",
    "SteadyStateViolated",
    "Timeline",
    "ToxiproxyClient",
    "UnsupportedByBackend",
    "__version__",
    "unavailable",
]

if TYPE_CHECKING:
    from pytest_chaos._messages import Duplicator
    from pytest_chaos._timeline import Event, Timeline
    from pytest_chaos.checks import (
        CheckResult,
        CircuitBreakerViolated,
        GuardTripped,
        History,
        HistoryViolated,
        IdempotencyViolated,
        RecoveryViolated,
        RetriesViolated,
        SteadyStateViolated,
    )
    from pytest_chaos.client import ToxiproxyClient
    from pytest_chaos.controller import Chaos, ChaosProxy, Fault
    from pytest_chaos.errors import (
        BlastRadiusError,
        ChaosError,
        ChaosUnavailable,
        CheckError,
        ConfigurationError,
        HypothesisViolated,
        InjectionError,
        InjectionVetoed,
        ProxyAPIError,
        RollbackError,
        ServiceError,
        SteadyStateNotMet,
        UnsupportedByBackend,
        unavailable,
    )
    from pytest_chaos.marker import BlastRadius
    from pytest_chaos.proxy import EmbeddedServer
    from pytest_chaos.services import ChaosServices, Service


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_chaos' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
