"""Dependencies for chaos tests: containers through testcontainers, or local binaries,
and the user's own services as processes.

The ``chaos_services`` fixture returns a `ChaosServices`; its ``redis()``,
``postgres()``, ``container(image, port)`` and ``process(argv, ready=...)`` return
running `Service` objects. Resource faults (``chaos.cpu_stress``, ``memory_limit``,
``fill_disk``, ``exhaust_connections``) get their workers, container settings and held
sessions from ``_resources.py``. Service faults (``chaos.pause``, ``stop``, ``kill``,
``restart``, ``disconnect``, ``kill_random``) are the experiment's (they go through
``Chaos.inject``); this package only runs the services.

Names load lazily: pytest loads this package with the plugin on every run, and Docker
and testcontainers load only when a service is started on Docker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_chaos.lazy import lazy_attributes

__all__ = [
    "FILLER_NAME",
    "LABEL_OWNER",
    "LABEL_RUN",
    "ChaosServices",
    "Confinement",
    "ConnectionHolder",
    "ContainerWorkers",
    "CpuWorkers",
    "DutyCycle",
    "MemoryHog",
    "PostgresTablespace",
    "RedisReplyError",
    "ResourceUnsupported",
    "Service",
    "ServiceSettings",
    "ServiceUnavailable",
    "SmallFilesystem",
    "TablespaceLocked",
    "container_limits",
    "container_of",
    "docker_unusable_reason",
    "fill_directory",
    "fill_redis",
    "free_port",
    "owner_token",
    "redis_call",
    "redis_password",
    "remove_dead_leftovers",
    "restore_memory_limit",
    "running_services",
    "service_settings",
    "settle_ryuk",
    "unfill_redis",
    "update_container",
    "wait_for",
]

# The Docker names import the docker SDK: only the container backend asks for them.
_LAZY = {
    "ChaosServices": "pytest_chaos.services._manager",
    "ServiceUnavailable": "pytest_chaos.services._manager",
    "Service": "pytest_chaos.services._service",
    "ServiceSettings": "pytest_chaos.services._settings",
    "free_port": "pytest_chaos.services._local",
    "running_services": "pytest_chaos.services._plugin",
    "service_settings": "pytest_chaos.services._plugin",
    "Confinement": "pytest_chaos.services._resources",
    "ConnectionHolder": "pytest_chaos.services._resources",
    "ContainerWorkers": "pytest_chaos.services._resources",
    "CpuWorkers": "pytest_chaos.services._resources",
    "DutyCycle": "pytest_chaos.services._resources",
    "MemoryHog": "pytest_chaos.services._resources",
    "SmallFilesystem": "pytest_chaos.services._resources",
    "PostgresTablespace": "pytest_chaos.services._resources",
    "TablespaceLocked": "pytest_chaos.services._resources",
    "container_limits": "pytest_chaos.services._resources",
    "container_of": "pytest_chaos.services._resources",
    "RedisReplyError": "pytest_chaos.services._resources",
    "ResourceUnsupported": "pytest_chaos.services._resources",
    "FILLER_NAME": "pytest_chaos.services._resources",
    "fill_directory": "pytest_chaos.services._resources",
    "fill_redis": "pytest_chaos.services._resources",
    "unfill_redis": "pytest_chaos.services._resources",
    "redis_call": "pytest_chaos.services._resources",
    "redis_password": "pytest_chaos.services._resources",
    "restore_memory_limit": "pytest_chaos.services._resources",
    "update_container": "pytest_chaos.services._resources",
    "wait_for": "pytest_chaos.services._resources",
    "LABEL_OWNER": "pytest_chaos.services._docker",
    "LABEL_RUN": "pytest_chaos.services._docker",
    "docker_unusable_reason": "pytest_chaos.services._docker",
    "owner_token": "pytest_chaos.services._docker",
    "remove_dead_leftovers": "pytest_chaos.services._docker",
    "settle_ryuk": "pytest_chaos.services._docker",
}

if TYPE_CHECKING:
    from pytest_chaos.services._docker import (
        LABEL_OWNER,
        LABEL_RUN,
        docker_unusable_reason,
        owner_token,
        remove_dead_leftovers,
        settle_ryuk,
    )
    from pytest_chaos.services._local import free_port
    from pytest_chaos.services._manager import ChaosServices, ServiceUnavailable
    from pytest_chaos.services._plugin import running_services, service_settings
    from pytest_chaos.services._resources import (
        FILLER_NAME,
        Confinement,
        ConnectionHolder,
        ContainerWorkers,
        CpuWorkers,
        DutyCycle,
        MemoryHog,
        PostgresTablespace,
        RedisReplyError,
        ResourceUnsupported,
        SmallFilesystem,
        TablespaceLocked,
        container_limits,
        container_of,
        fill_directory,
        fill_redis,
        redis_call,
        redis_password,
        restore_memory_limit,
        unfill_redis,
        update_container,
        wait_for,
    )
    from pytest_chaos.services._service import Service
    from pytest_chaos.services._settings import ServiceSettings


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
