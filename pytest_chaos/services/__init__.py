"""Dependencies for chaos tests: containers through testcontainers, or local binaries,
and the user's own services as processes.

The ``chaos_services`` fixture returns a `ChaosServices`; its ``redis()``,
``postgres()``, ``container(image, port)`` and ``process(argv, ready=...)`` return
running `Service` objects. Service faults (``chaos.pause``, ``stop``, ``kill``,
``restart``, ``disconnect``, ``kill_random``) come from `ContainerFaultsMixin`, which
the controller inherits.

Names load lazily: pytest loads this package with the plugin on every run, and Docker
and testcontainers load only when a service is started on Docker.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ChaosServices",
    "ContainerFaultsMixin",
    "Service",
    "ServiceSettings",
    "ServiceUnavailable",
]

_LAZY = {
    "ChaosServices": "pytest_chaos.services._manager",
    "ServiceUnavailable": "pytest_chaos.services._manager",
    "ContainerFaultsMixin": "pytest_chaos.services._faults",
    "Service": "pytest_chaos.services._service",
    "ServiceSettings": "pytest_chaos.services._settings",
}

if TYPE_CHECKING:
    from pytest_chaos.services._faults import ContainerFaultsMixin
    from pytest_chaos.services._manager import ChaosServices, ServiceUnavailable
    from pytest_chaos.services._service import Service
    from pytest_chaos.services._settings import ServiceSettings


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_chaos.services' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
