"""Dependencies for chaos tests: containers through testcontainers, or local binaries.

The ``chaos_services`` fixture returns a `ChaosServices`; its ``redis()``,
``postgres()`` and ``container(image, port)`` return running `Service` objects.
Container faults (``chaos.pause``, ``stop``, ``kill``, ``disconnect``, ``kill_random``)
come from `ContainerFaultsMixin`, which the controller inherits.

Importing this package is cheap: Docker and testcontainers load only when a service is
started on Docker.
"""

from __future__ import annotations

from pytest_chaos.services._faults import ContainerFaultsMixin
from pytest_chaos.services._manager import ChaosServices, ServiceUnavailable
from pytest_chaos.services._service import Service
from pytest_chaos.services._settings import ServiceSettings

__all__ = [
    "ChaosServices",
    "ContainerFaultsMixin",
    "Service",
    "ServiceSettings",
    "ServiceUnavailable",
]
