"""Unit tests of the example shop's bounded database pool (``SHOP_FRAGILE=pool`` removes
it): with PostgreSQL refusing new sessions, a request waits for a held connection, and
is shed (503 with Retry-After) when none comes back in time. No database: the pool's
connect is replaced by one that hands out stand-ins or refuses like PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

pytest.importorskip("psycopg")
import psycopg

from example_suite.shop.config import Resilience
from example_suite.shop.db import Database, DatabaseUnavailable

FULL = "connection failed: FATAL:  sorry, too many clients already"


class StandIn:
    closed = False
    broken = False

    def close(self) -> None:
        self.closed = True


def pool(wait: float | None, *, slots: int) -> tuple[Database, list[int]]:
    """A database whose server has ``slots`` connection slots; connects are counted."""
    db = Database("postgresql://nowhere/db", Resilience(pool_wait=wait))
    connects = [0]

    def connect() -> Any:
        connects[0] += 1
        if connects[0] > slots:
            raise psycopg.OperationalError(FULL)
        return StandIn()

    db._connect = connect  # type: ignore[method-assign]
    return db, connects


def test_a_request_queues_for_a_held_connection_when_the_server_is_full() -> None:
    db, connects = pool(1.0, slots=1)
    held = db._acquire()
    threading.Timer(0.2, db._release, args=(held,)).start()
    started = time.monotonic()
    assert db._acquire() is held  # the one connection, handed over
    assert 0.1 < time.monotonic() - started < 1.0
    assert connects[0] == 2  # it tried for a new one first, then waited


def test_a_request_is_shed_when_nothing_comes_back_in_time() -> None:
    db, _ = pool(0.2, slots=1)
    db._acquire()
    with pytest.raises(DatabaseUnavailable, match=r"no database connection free within 0.2 s"):
        db._acquire()


def test_with_nothing_held_a_full_server_fails_at_once() -> None:
    db, _ = pool(5.0, slots=0)
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="too many clients"):
        db._acquire()
    assert time.monotonic() - started < 1.0  # nothing to wait for


def test_without_the_pool_a_full_server_fails_every_new_connection() -> None:
    db, _ = pool(None, slots=1)
    db._acquire()
    with pytest.raises(psycopg.OperationalError, match="too many clients"):
        db._acquire()
