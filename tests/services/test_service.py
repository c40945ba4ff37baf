"""Real Redis and PostgreSQL from the services layer, behind the embedded fault proxy.

Each test runs once per provider (Docker containers, local binaries). Timing asserts
are lower bounds that a latency toxic guarantees, never upper bounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from pytest_chaos.errors import ServiceError
from pytest_chaos.services import ChaosServices, Service, ServiceSettings

from ..conftest import require_docker

pytest.importorskip("psycopg")
pytest.importorskip("redis")
import psycopg
import redis


def _seconds(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_redis_service_answers_a_real_client(services: ChaosServices, redis_client) -> None:
    svc = services.redis()
    assert svc.host == "127.0.0.1"
    assert svc.address == f"127.0.0.1:{svc.port}"
    assert svc.url == f"redis://127.0.0.1:{svc.port}/0"
    assert svc.name == "redis"
    assert svc.state == "running"
    assert services.redis() is svc  # one service per name, shared
    client = redis_client(svc.host, svc.port)
    client.set("greeting", "hello")
    assert client.get("greeting") == b"hello"
    assert repr(svc).startswith("<Service 'redis' redis 127.0.0.1:")
    assert "running" in repr(svc)


def test_postgres_service_answers_a_real_client(services: ChaosServices) -> None:
    svc = services.postgres()
    assert svc.url.startswith("postgresql://postgres:postgres@127.0.0.1:")
    with psycopg.connect(svc.url, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t_answers (v int)")
        conn.execute("INSERT INTO t_answers VALUES (42)")
        assert conn.execute("SELECT max(v) FROM t_answers").fetchone() == (42,)


@pytest.mark.chaos(blast_radius=["redis"])
def test_redis_behind_the_proxy_sees_latency_and_down(
    chaos, services: ChaosServices, redis_client
) -> None:
    svc: Service = services.redis()
    proxy = chaos.proxy("redis", upstream=svc.address)
    client = redis_client(proxy.host, proxy.port)
    assert client.ping()
    with proxy.latency(400):
        slow = _seconds(client.ping)
    assert slow >= 0.35, f"a PING with 400 ms of latency took {slow:.3f} s"
    with proxy.down(), pytest.raises(redis.ConnectionError):
        client.ping()
    assert client.ping()  # the client reconnects once the proxy is back


@pytest.mark.chaos(blast_radius=["postgres"])
def test_postgres_behind_the_proxy_sees_latency_and_down(chaos, services: ChaosServices) -> None:
    svc = services.postgres()
    proxy = chaos.proxy("postgres", upstream=svc.address)
    url = svc.url.replace(svc.address, proxy.address)
    with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        with proxy.latency(400):
            slow = _seconds(lambda: conn.execute("SELECT 1").fetchone())
        assert slow >= 0.35, f"a query with 400 ms of latency took {slow:.3f} s"
        with proxy.down(), pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with psycopg.connect(url, connect_timeout=10) as conn:  # and back after heal
        assert conn.execute("SELECT 2").fetchone() == (2,)


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_a_local_port_lost_to_another_process_is_retried(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from pytest_chaos.services import ServiceSettings, _local

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    real_free_port = _local.free_port
    ports = iter([busy])
    monkeypatch.setattr(_local, "free_port", lambda: next(ports, None) or real_free_port())
    services = ChaosServices(ServiceSettings(provider="local"), on_unavailable=pytest.skip)
    try:
        svc = getattr(services, kind)()
        assert svc.port != busy
        assert svc.state == "running"
    finally:
        assert services.close() == []
        taken.close()


def test_an_image_missing_offline_falls_back_to_the_local_binary() -> None:
    """Docker answers but the image can be neither found nor pulled (no registry): the
    service runs from the local binary, and says why, unless Docker is demanded."""
    require_docker()
    missing = "pytest-chaos/no-such-image:offline"
    services = ChaosServices(ServiceSettings(provider="auto", redis_image=missing))
    try:
        service = services.redis("fallback")
        assert service.provider == "local"
        assert redis.Redis.from_url(service.url).ping()
        assert missing in services.fallbacks[0]
    finally:
        services.close()

    demanding = ChaosServices(ServiceSettings(provider="docker", redis_image=missing))
    try:
        with pytest.raises(ServiceError, match=r"no-such-image:offline.*not present locally"):
            demanding.redis("demanded")
    finally:
        demanding.close()
