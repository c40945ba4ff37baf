"""``chaos_services.postgres_replica``: a streaming hot standby of a running primary,
under each provider of the primary, its WAL stream through a chaos proxy, and the
errors for what cannot be a replica."""

from __future__ import annotations

import time
import uuid

import pytest

from pytest_chaos import Chaos
from pytest_chaos.errors import ServiceError
from pytest_chaos.services import ChaosServices
from pytest_chaos.services._replica import parse_via, replica_binaries

from ..conftest import _not_available

psycopg = pytest.importorskip("psycopg")


def _wait_for(query: str, url: str, expected: object, within: float = 10.0) -> object:
    """Run ``query`` on ``url`` until it returns ``expected`` or ``within`` s pass."""
    deadline = time.monotonic() + within
    while True:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute(query).fetchone()
            value = row[0] if row else None
        except psycopg.errors.UndefinedTable as exc:  # not replayed yet
            value = exc
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_a_replica_replays_the_primarys_writes_and_refuses_its_own(
    services: ChaosServices,
) -> None:
    primary = services.postgres(f"primary-{uuid.uuid4().hex[:6]}")
    try:
        replica_binaries(primary)
    except ServiceError as exc:  # a container's PostgreSQL with no binaries of its version
        _not_available(str(exc))
    table = f"t_{uuid.uuid4().hex[:8]}"
    with services.postgres_replica(primary) as replica:
        assert replica.kind == "postgres"
        assert replica.provider in ("local", "bundled")
        assert replica.version is not None and primary.version is not None
        assert replica.version.split(".")[0] == primary.version.split(".")[0]
        with psycopg.connect(primary.url, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {table} (x int)")
            conn.execute(f"INSERT INTO {table} VALUES (1), (2)")
        assert _wait_for(f"SELECT count(*) FROM {table}", replica.url, 2) == 2
        with psycopg.connect(replica.url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            assert row == (True,)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute(f"INSERT INTO {table} VALUES (3)")
    assert replica.state == "removed"


@pytest.mark.chaos(blast_radius=["link"])
def test_a_replica_behind_a_downed_proxy_lags_and_catches_up_after_the_heal(
    chaos: Chaos, bundled_services: ChaosServices
) -> None:
    primary = bundled_services.postgres("replica-primary")
    link = chaos.proxy("link", upstream=primary)
    table = f"t_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(primary.url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (x int)")
    with bundled_services.postgres_replica(primary, via=link, name="linked-replica") as replica:
        assert _wait_for(f"SELECT count(*) FROM {table}", replica.url, 0) == 0
        with link.down():
            with psycopg.connect(primary.url, autocommit=True) as conn:
                conn.execute(f"INSERT INTO {table} VALUES (1)")
            time.sleep(1.0)
            seen = _wait_for(f"SELECT count(*) FROM {table}", replica.url, 1, within=0)
            assert seen == 0, "the write reached the replica with its link down"
        assert _wait_for(f"SELECT count(*) FROM {table}", replica.url, 1) == 1


def test_what_cannot_be_a_replica_is_refused_with_the_fix(
    bundled_services: ChaosServices,
) -> None:
    with pytest.raises(ValueError, match=r"via='nowhere' is not an address; give 'host:port'"):
        parse_via("nowhere")
    assert parse_via("127.0.0.1:5432") == ("127.0.0.1", 5432)
    assert parse_via(None) is None
    redis = bundled_services.redis("replica-not-pg")
    with pytest.raises(ValueError, match="'replica-not-pg' is a redis service, not PostgreSQL"):
        bundled_services.postgres_replica(redis)
    primary = bundled_services.postgres("replica-primary")
    with pytest.raises(ValueError, match="already used by a running redis service"):
        bundled_services.postgres_replica(primary, name="replica-not-pg")
