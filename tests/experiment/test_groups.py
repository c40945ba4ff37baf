"""chaos.group: a zone of proxies and services that fails as one fault, within the
blast radius, on the timeline, healed as a whole."""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any

import pytest

from pytest_chaos import BlastRadius, Chaos
from pytest_chaos.errors import BlastRadiusError, ConfigurationError
from pytest_chaos.services import ChaosServices

from ..services._proctools import READY, echo_argv


def _echo(address: str, timeout: float = 5.0) -> bytes | None:
    """One line through ``address``; ``None`` when the connection fails or is closed."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(b"ping\n")
            return sock.makefile("rb").readline() or None
    except OSError:
        return None


@pytest.fixture
def echo(chaos_services: ChaosServices) -> Any:
    with chaos_services.process(
        echo_argv(), ready=READY, name=f"echo-{uuid.uuid4().hex[:6]}"
    ) as service:
        yield service


@pytest.mark.chaos(blast_radius=BlastRadius(targets=["zone-a"], max_concurrent_faults=1))
def test_a_zone_goes_down_as_one_fault_and_comes_back_whole(chaos: Chaos, echo: Any) -> None:
    db_a = chaos.proxy("db-a", upstream=echo.address)
    cache_a = chaos.proxy("cache-a", upstream=echo.address)
    other = chaos.proxy("db-b", upstream=echo.address)
    zone = chaos.group("zone-a", [db_a, "cache-a"])
    assert zone.members == ["db-a", "cache-a"]
    with zone.down() as fault:
        assert _echo(db_a.address) is None and _echo(cache_a.address) is None
        assert _echo(other.address) == b"echo:ping\n"  # outside the zone
        assert fault.target == "zone-a" and fault.kind == "down"
        assert fault.attributes["members"] == ["db-a", "cache-a"]
        # one fault: max_concurrent_faults=1 refuses a second one
        with pytest.raises(BlastRadiusError, match="max_concurrent_faults=1 reached"):
            zone.latency(100)
    assert _echo(db_a.address) == b"echo:ping\n" and _echo(cache_a.address) == b"echo:ping\n"
    injected = [e for e in chaos.timeline.events if e.kind == "inject"]
    assert [(e.name, e.target) for e in injected] == [("down", "zone-a")]
    assert len(chaos.faults) == 1 and not chaos.active_faults


@pytest.mark.chaos(blast_radius=["db-a", "cache-a"])
def test_a_radius_naming_every_member_allows_the_group(chaos: Chaos, echo: Any) -> None:
    db_a = chaos.proxy("db-a", upstream=echo.address)
    cache_a = chaos.proxy("cache-a", upstream=echo.address)
    zone = chaos.group("zone-a", [db_a, cache_a])
    with zone.latency(300) as fault:
        assert fault.target == "db-a,cache-a"
        for proxy in (db_a, cache_a):
            started = time.monotonic()
            assert _echo(proxy.address) == b"echo:ping\n"
            assert time.monotonic() - started >= 0.25
        assert "latency" in repr(db_a)
    assert "latency" not in repr(db_a) and "latency" not in repr(cache_a)


@pytest.mark.chaos(blast_radius=["db-a"])
def test_a_zone_outside_the_radius_is_refused_naming_the_member(chaos: Chaos, echo: Any) -> None:
    db_a = chaos.proxy("db-a", upstream=echo.address)
    cache_a = chaos.proxy("cache-a", upstream=echo.address)
    zone = chaos.group("zone-a", [db_a, cache_a])
    with pytest.raises(BlastRadiusError, match="blast_radius does not include 'cache-a'") as exc:
        zone.down()
    # the fix names the group as well as the member
    assert "group 'zone-a':" in str(exc.value)
    assert "blast_radius=['zone-a']" in str(exc.value)
    assert "members outside it: 'cache-a')" in str(exc.value)
    assert _echo(db_a.address) == b"echo:ping\n", "nothing may be applied when refused"
    assert not chaos.faults


@pytest.mark.chaos(blast_radius=BlastRadius(targets=["zone-*"]))
def test_a_zone_with_a_service_kills_it_and_the_heal_restarts_it(chaos: Chaos, echo: Any) -> None:
    front = chaos.proxy("front-a", upstream=echo.address)
    zone = chaos.group("zone-a", [front, echo])
    pid = echo.pid
    with zone.down():
        assert echo.state == "stopped"
        assert _echo(echo.address, timeout=2) is None
    assert echo.state == "running" and echo.pid != pid
    assert _echo(front.address) == b"echo:ping\n"
    with pytest.raises(ConfigurationError, match="the group has no proxy"):
        chaos.group("zone-b", [echo]).latency(10)


@pytest.mark.chaos(blast_radius=["zone-a"])
def test_what_cannot_be_a_group_is_refused_with_the_fix(chaos: Chaos, echo: Any) -> None:
    db_a = chaos.proxy("db-a", upstream=echo.address)
    with pytest.raises(ConfigurationError, match="the name must be letters"):
        chaos.group("zone a", [db_a])
    with pytest.raises(ConfigurationError, match="members must be a list"):
        chaos.group("zone-a", db_a)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="'nope' is not a proxy of this test"):
        chaos.group("zone-a", ["nope"])
    with pytest.raises(ConfigurationError, match="has no member"):
        chaos.group("zone-a", [])
    with pytest.raises(ConfigurationError, match=r"\['db-a'\] given more than once"):
        chaos.group("zone-a", [db_a, "db-a"])
    with pytest.raises(ConfigurationError, match="stream='sideways' is not allowed"):
        chaos.group("zone-a", [db_a]).latency(10, stream="sideways")
