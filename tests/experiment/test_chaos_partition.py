"""chaos.partition across proxies and a real Docker container.

Needs a Docker engine and the Redis image of the settings (offline CI points
PYTEST_CHAOS_REDIS_IMAGE at a local image). Without Docker the test is skipped, unless
the run demands Docker (PYTEST_CHAOS_REQUIRE_DOCKER=1, as CI sets): then it fails.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

from pytest_chaos import InjectionError, ServiceError

REQUIRE_DOCKER = os.environ.get("PYTEST_CHAOS_REQUIRE_DOCKER", "").lower() in ("1", "true", "yes")


def _unavailable(message: str) -> NoReturn:
    if REQUIRE_DOCKER:
        pytest.fail(message)
    pytest.skip(message)


def _ping(address: str) -> bool:
    """A real Redis PING over a fresh connection; False if it cannot get PONG."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def docker_redis() -> Iterator[Any]:
    try:
        from pytest_chaos.services import ChaosServices, ServiceSettings
        from pytest_chaos.services._docker import docker_unusable_reason
    except ImportError as exc:  # pragma: no cover - the dev extra installs docker
        _unavailable(f"docker/testcontainers are not installed: {exc}")
    reason = docker_unusable_reason()
    if reason is not None:
        _unavailable(f"Docker is not usable: {reason}")
    settings = dataclasses.replace(ServiceSettings.from_environment(), provider="docker")
    manager = ChaosServices(settings, on_unavailable=_unavailable)
    try:
        redis = manager.redis("cache")
    except ServiceError as exc:  # e.g. no image and no registry: not usable here
        manager.close()
        _unavailable(str(exc))
    yield redis
    assert manager.close() == []


@pytest.mark.chaos(blast_radius=["cache", "front"])
def test_partition_cuts_a_container_and_a_proxy_and_heals_both(
    chaos: Any, docker_redis: Any
) -> None:
    front = chaos.proxy("front", upstream=docker_redis.address)
    assert _ping(docker_redis.address) and _ping(front.address)
    with chaos.partition([front], [docker_redis]) as fault:
        assert fault.attributes == {"proxies": ["front"], "services": ["cache"]}
        assert not _ping(docker_redis.address)
        assert not _ping(front.address)
    assert _ping(docker_redis.address)
    assert _ping(front.address)


@pytest.mark.chaos(blast_radius=["front"])
def test_a_service_outside_the_radius_is_not_cut(chaos: Any, docker_redis: Any) -> None:
    from pytest_chaos import BlastRadiusError

    front = chaos.proxy("front", upstream=docker_redis.address)
    with pytest.raises(BlastRadiusError, match="does not include 'cache'"):
        chaos.partition([front], [docker_redis])
    assert _ping(docker_redis.address) and _ping(front.address)
    assert chaos.active_faults == []


def test_a_local_process_cannot_be_partitioned_and_says_why(chaos: Any) -> None:
    from pytest_chaos.services._service import Service

    class LocalRuntime:
        provider = "local"

    local = Service(
        name="cache",
        kind="redis",
        host="127.0.0.1",
        port=1,
        url="redis://127.0.0.1:1",
        runtime=LocalRuntime(),  # type: ignore[arg-type]
    )
    with pytest.raises(InjectionError, match="--chaos-services=docker"):
        chaos.partition([local])
