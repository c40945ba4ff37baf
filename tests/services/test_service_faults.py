"""Container faults seen by real clients: pause, stop, kill, disconnect, kill_random.

Each runs once per provider (Docker containers, local processes), except disconnect,
which only the Docker provider has. Every fault is healed by the test or at teardown;
the tests check that the client sees the fault and that the service is back after it.
"""

from __future__ import annotations

import threading
import time

import pytest

from pytest_chaos import BlastRadius
from pytest_chaos.errors import InjectionError
from pytest_chaos.services import ChaosServices, ServiceSettings

pytest.importorskip("psycopg")
pytest.importorskip("redis")
import psycopg
import redis


@pytest.mark.chaos(blast_radius=["redis"])
def test_pause_makes_clients_time_out_then_recover(
    chaos, services: ChaosServices, redis_client
) -> None:
    svc = services.redis()
    client = redis_client(svc.host, svc.port, timeout=1.0)
    assert client.ping()
    with chaos.pause(svc) as fault:
        assert svc.state == "paused"
        # A frozen server keeps the connection open and never answers.
        with pytest.raises(redis.TimeoutError):
            client.ping()
    assert not fault.active
    assert svc.state == "running"
    assert redis_client(svc.host, svc.port).ping()
    kinds = [(e.kind, e.name) for e in chaos.timeline.events]
    assert ("inject", "pause") in kinds and ("heal", "pause") in kinds


@pytest.mark.chaos(blast_radius=["redis"])
def test_stop_refuses_connections_until_healed(
    chaos, services: ChaosServices, redis_client
) -> None:
    svc = services.redis()
    fault = chaos.stop(svc)
    assert svc.state == "stopped"
    with pytest.raises(redis.ConnectionError, match=r"refused|reset|closed"):
        redis_client(svc.host, svc.port, timeout=2.0).ping()
    fault.heal()
    assert svc.state == "running"
    assert redis_client(svc.host, svc.port).ping()  # same address after the restart


@pytest.mark.chaos(blast_radius=["redis"])
def test_kill_crashes_the_server_and_heal_restarts_it(
    chaos, services: ChaosServices, redis_client
) -> None:
    svc = services.redis()
    client = redis_client(svc.host, svc.port)
    client.set("before-kill", "1")
    with chaos.kill(svc):
        assert svc.state == "stopped"
        with pytest.raises(redis.ConnectionError):
            client.ping()
    # The server restarted on the same address; without persistence the key is gone,
    # which is what a crash of a cache looks like to the application.
    fresh = redis_client(svc.host, svc.port)
    assert fresh.ping()
    assert fresh.get("before-kill") is None


@pytest.mark.chaos(blast_radius=["postgres"])
def test_kill_postgres_breaks_the_session_and_heal_restarts_it(
    chaos, services: ChaosServices
) -> None:
    svc = services.postgres()
    with psycopg.connect(svc.url, connect_timeout=10, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        with chaos.kill(svc):
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(svc.url, connect_timeout=3).close()
    with psycopg.connect(svc.url, connect_timeout=10) as conn:
        assert conn.execute("SELECT 2").fetchone() == (2,)


@pytest.mark.chaos(blast_radius=["redis"])
def test_disconnect_partitions_a_container(
    chaos, docker_services: ChaosServices, redis_client
) -> None:
    svc = docker_services.redis()
    with chaos.disconnect(svc) as fault:
        assert fault.attributes["service"] == "redis"
        with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
            redis_client(svc.host, svc.port, timeout=2.0).ping()
    assert redis_client(svc.host, svc.port).ping()


@pytest.mark.chaos(blast_radius=["redis"])
def test_disconnect_of_a_local_process_is_refused_with_the_fix(
    chaos, local_services: ChaosServices
) -> None:
    svc = local_services.redis()
    with pytest.raises(InjectionError, match=r"--chaos-services=docker"):
        chaos.disconnect(svc)
    assert chaos.active_faults == []
    assert svc.state == "running"


@pytest.mark.chaos(blast_radius=["cache-a", "cache-b"])
def test_kill_random_kills_one_seeded_victim(chaos, services: ChaosServices, redis_client) -> None:
    a, b = services.redis("cache-a"), services.redis("cache-b")
    (fault,) = chaos.kill_random([a, b], k=1)
    victim, survivor = (a, b) if fault.target == "cache-a" else (b, a)
    assert victim.state == "stopped"
    assert redis_client(survivor.host, survivor.port).ping()
    fault.heal()
    assert redis_client(victim.host, victim.port).ping()


@pytest.mark.chaos(blast_radius=["postgres"])
def test_a_fault_outside_the_blast_radius_touches_nothing(chaos, services: ChaosServices) -> None:
    from pytest_chaos.errors import BlastRadiusError

    svc = services.redis()
    with pytest.raises(BlastRadiusError, match="redis"):
        chaos.kill(svc)
    assert svc.state == "running"


@pytest.mark.chaos(blast_radius=["redis"])
def test_killing_a_paused_service_works_and_both_heal(
    chaos, services: ChaosServices, redis_client
) -> None:
    svc = services.redis()
    pause = chaos.pause(svc)
    kill = chaos.kill(svc)
    assert svc.state == "stopped"
    kill.heal()
    pause.heal()
    assert svc.state == "running"
    assert redis_client(svc.host, svc.port).ping()


def test_a_service_left_down_is_restarted_at_the_next_request(
    services: ChaosServices, redis_client
) -> None:
    svc = services.redis()
    svc.runtime.kill()  # behind the controller's back: no fault, no heal
    assert svc.state == "stopped"
    assert services.redis() is svc
    assert svc.state == "running"
    assert redis_client(svc.host, svc.port).ping()


@pytest.mark.chaos(blast_radius=["postgres"])
def test_pause_freezes_open_postgres_sessions_too(chaos, services: ChaosServices) -> None:
    svc = services.postgres()
    with psycopg.connect(svc.url, connect_timeout=10, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        answers: list[object] = []
        with chaos.pause(svc):
            # PostgreSQL serves a session from its own backend process: a pause that
            # froze only the server's main process would let this query through.
            worker = threading.Thread(
                target=lambda: answers.append(conn.execute("SELECT 2").fetchone())
            )
            worker.start()
            worker.join(timeout=1.5)
            assert answers == []
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(svc.url, connect_timeout=2).close()
        worker.join(timeout=30)
        assert answers == [(2,)]  # the frozen query completes after the heal


@pytest.mark.chaos(blast_radius=["redis"])
def test_disconnect_cuts_the_service_off_its_neighbours_by_alias(
    chaos, docker_services: ChaosServices
) -> None:
    svc = docker_services.redis()
    neighbour = docker_services.container(
        ServiceSettings.from_environment().redis_image, 6379, name="neighbour"
    )
    container = neighbour.runtime.container  # type: ignore[attr-defined]
    assert svc.internal_address == "redis:6379"

    def ping_by_alias() -> bytes:
        _, output = container.exec_run(["timeout", "5", "redis-cli", "-h", "redis", "ping"])
        return bytes(output).strip()

    assert ping_by_alias() == b"PONG"
    with chaos.disconnect(svc):
        assert ping_by_alias() != b"PONG"
    assert ping_by_alias() == b"PONG"


def test_a_generic_container_is_published_on_loopback(docker_services: ChaosServices) -> None:
    image = ServiceSettings.from_environment().redis_image
    svc = docker_services.container(image, 6379, name="generic", scheme="redis")
    assert svc.kind == "container" and svc.provider == "docker"
    assert svc.url == f"redis://127.0.0.1:{svc.port}"
    assert docker_services.container(image, 6379, name="generic") is svc
    ports = svc.runtime.container.attrs["HostConfig"]["PortBindings"]  # type: ignore[attr-defined]
    assert ports == {"6379/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(svc.port)}]}
    with pytest.raises(ValueError, match="already used by a container service"):
        docker_services.redis("generic")


@pytest.mark.chaos(blast_radius=BlastRadius(targets=["redis"], max_fault_seconds=0.5))
def test_the_safety_timer_heals_a_forgotten_container_fault(
    chaos, services: ChaosServices, redis_client
) -> None:
    svc = services.redis()
    fault = chaos.kill(svc)
    deadline = time.monotonic() + 60
    while fault.active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not fault.active and fault.healed_by == "safety_timer"
    assert svc.state == "running"
    assert redis_client(svc.host, svc.port).ping()


@pytest.mark.chaos(blast_radius=["redis"])
def test_asking_for_a_paused_service_again_keeps_the_fault(chaos, services: ChaosServices) -> None:
    svc = services.redis()
    with chaos.pause(svc):
        assert services.redis() is svc
        assert svc.state == "paused"
    assert svc.state == "running"
