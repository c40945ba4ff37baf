"""pytest-chaos: chaos engineering for pytest.

Mark a test ``@pytest.mark.chaos(blast_radius=[...])``, put a fault proxy in front of
each dependency with the ``chaos`` fixture, inject faults and assert resilience
hypotheses. Every fault is rolled back at teardown. Where an experiment's
infrastructure is missing (no Docker, no server binary), ``pytest_chaos.unavailable(reason)``
skips the test, or makes it an error under ``--chaos-strict``.

Names are imported lazily so that ``import pytest_chaos`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_chaos.lazy import lazy_attributes
from pytest_chaos.version import __version__

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "BlastRadius": "pytest_chaos.experiment",
    "Chaos": "pytest_chaos.experiment",
    "ChaosProxy": "pytest_chaos.experiment",
    "Fault": "pytest_chaos.experiment",
    "FaultGroup": "pytest_chaos.experiment",
    "Duplicator": "pytest_chaos.experiment",
    "Corrupter": "pytest_chaos.experiment",
    "ToxiproxyClient": "pytest_chaos.client",
    "EmbeddedServer": "pytest_chaos.proxy",
    "ChaosServices": "pytest_chaos.services",
    "Service": "pytest_chaos.services",
    "Event": "pytest_chaos.timeline",
    "Timeline": "pytest_chaos.timeline",
    "CheckResult": "pytest_chaos.checks",
    "CircuitBreakerViolated": "pytest_chaos.checks",
    "ComparisonAborted": "pytest_chaos.checks",
    "ComparisonViolated": "pytest_chaos.checks",
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
    "ComparisonAborted",
    "ComparisonViolated",
    "ConfigurationError",
    "Corrupter",
    "Duplicator",
    "EmbeddedServer",
    "Event",
    "Fault",
    "FaultGroup",
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
    from pytest_chaos.checks import (
        CheckResult,
        CircuitBreakerViolated,
        ComparisonAborted,
        ComparisonViolated,
        GuardTripped,
        History,
        HistoryViolated,
        IdempotencyViolated,
        RecoveryViolated,
        RetriesViolated,
        SteadyStateViolated,
    )
    from pytest_chaos.client import ToxiproxyClient
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
    from pytest_chaos.experiment import (
        BlastRadius,
        Chaos,
        ChaosProxy,
        Corrupter,
        Duplicator,
        Fault,
        FaultGroup,
    )
    from pytest_chaos.proxy import EmbeddedServer
    from pytest_chaos.services import ChaosServices, Service
    from pytest_chaos.timeline import Event, Timeline


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
