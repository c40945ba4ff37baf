"""Reads from a PostgreSQL streaming replica, routed by the replica's position.

With ``SHOP_REPLICA_URL`` set, the order API offloads a customer's order list to a hot
standby. A standby replays the primary's WAL some time after the primary wrote it, so
two rules keep the answers honest:

- **read your writes**: every order written returns a ``Write-LSN`` header (the
  primary's WAL insert position after the commit). A read that carries it back
  (``?after=<lsn>``) goes to the replica only once the replica has replayed that
  position (it waits up to 100 ms), else to the primary;
- **bounded staleness**: a read without it accepts stale data, but only so stale: a
  monitor measures the replica's lag every 50 ms (the primary's
  ``pg_current_wal_insert_lsn`` minus the replica's ``pg_last_wal_replay_lsn``), and
  while it exceeds ``SHOP_REPLICA_MAX_LAG_BYTES`` (default 4096) reads go to the primary.

``SHOP_FRAGILE=read_your_writes`` removes both: every list read goes to the replica,
however far behind it is.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import psycopg
from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

if TYPE_CHECKING:
    from example_suite.shop.api import Backends

__all__ = ["ReplicaReads", "lsn_bytes", "register"]

_MONITOR_INTERVAL = 0.05
_CATCH_UP_WAIT = 0.1
_DEFAULT_MAX_LAG = 4096

_LIST = "SELECT id FROM orders WHERE customer = %s ORDER BY id"


def lsn_bytes(lsn: str) -> int:
    """A PostgreSQL LSN (``0/3001148``) as a byte position in the WAL."""
    high, _, low = lsn.partition("/")
    try:
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        raise ValueError(f"{lsn!r} is not a PostgreSQL LSN like '0/3001148'") from None


class ReplicaReads:
    """The replica connection, its lag monitor and the routing rules."""

    def __init__(self, primary_url: str, replica_url: str, *, guarded: bool, max_lag: int) -> None:
        self.primary_url = primary_url
        self.replica_url = replica_url
        self.guarded = guarded
        self.max_lag = max_lag
        #: the replica's lag in bytes at the last sample; None: unknown (unreachable)
        self.lag: int | None = None
        self._local = threading.local()
        self._stop = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="replica-lag", daemon=True)
        if guarded:
            self._monitor.start()

    def __repr__(self) -> str:
        return f"<ReplicaReads {self.replica_url} lag={self.lag} guarded={self.guarded}>"

    def _conn(self, which: str) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, which, None)
        if conn is None or conn.closed or conn.broken:
            url = self.primary_url if which == "primary" else self.replica_url
            conn = psycopg.connect(url, autocommit=True, connect_timeout=2)
            conn.execute("SET statement_timeout = 1000")
            setattr(self._local, which, conn)
        return conn

    def _query(self, which: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        try:
            return self._conn(which).execute(sql, args).fetchall()
        except psycopg.OperationalError:
            conn = getattr(self._local, which, None)
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            raise

    def write_position(self) -> str:
        """The primary's WAL insert position: every commit before it is at or below it."""
        return str(self._query("primary", "SELECT pg_current_wal_insert_lsn()::text")[0][0])

    def _replayed(self) -> int:
        lsn = self._query("replica", "SELECT pg_last_wal_replay_lsn()::text")[0][0]
        return lsn_bytes(str(lsn)) if lsn else 0

    def _watch(self) -> None:
        while not self._stop.wait(_MONITOR_INTERVAL):
            try:
                primary = lsn_bytes(self.write_position())
                self.lag = max(0, primary - self._replayed())
            except (psycopg.Error, ValueError):
                self.lag = None  # unknown counts as too far behind

    def _caught_up(self, after: int) -> bool:
        deadline = time.monotonic() + _CATCH_UP_WAIT
        while True:
            with contextlib.suppress(psycopg.Error):
                if self._replayed() >= after:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def route(self, after: str | None) -> str:
        """``replica`` or ``primary`` for a read (``after``: the LSN it must see)."""
        if not self.guarded:
            return "replica"
        if after is not None:
            return "replica" if self._caught_up(lsn_bytes(after)) else "primary"
        lag = self.lag
        return "replica" if lag is not None and lag <= self.max_lag else "primary"

    def customer_orders(self, customer: str, after: str | None) -> dict[str, Any]:
        """The ids of a customer's orders, where they were read, and the LSN replayed."""
        source = self.route(after)
        if source == "replica":
            rows = self._query(
                "replica",
                f"SELECT ids, pg_last_wal_replay_lsn()::text FROM "
                f"(SELECT coalesce(array_agg(id ORDER BY id), '{{}}') AS ids FROM ({_LIST}) o) a",
                customer,
            )
            ids, replayed = rows[0]
        else:
            ids = [row[0] for row in self._query("primary", _LIST, customer)]
            replayed = None
        return {"customer": customer, "orders": list(ids), "source": source, "lsn": replayed}

    def close(self) -> None:
        """Stop the monitor."""
        self._stop.set()


def register(app: Any, shop: Backends) -> None:
    """Add the replica reads to the order API when ``SHOP_REPLICA_URL`` is set."""
    replica_url = os.environ.get("SHOP_REPLICA_URL", "")
    if not replica_url:
        return
    reads = ReplicaReads(
        shop.config.database_url,
        replica_url,
        guarded="read_your_writes" not in shop.config.removed,
        max_lag=int(os.environ.get("SHOP_REPLICA_MAX_LAG_BYTES", _DEFAULT_MAX_LAG)),
    )
    app.extensions["replica_reads"] = reads
    blueprint = Blueprint("replica_reads", __name__)

    @blueprint.get("/customers/<customer>/orders")
    def customer_orders(customer: str) -> ResponseReturnValue:
        after = request.args.get("after")
        try:
            if after is not None:
                lsn_bytes(after)
            return jsonify(reads.customer_orders(customer, after))
        except ValueError as exc:
            return jsonify(error=str(exc)), 400
        except psycopg.OperationalError as exc:
            return jsonify(error=f"database unavailable: {exc}"), 503, {"Retry-After": "1"}

    @blueprint.after_app_request
    def write_lsn(response: Response) -> Response:
        # An order written: hand its position back, for the reads that must see it.
        if request.method == "POST" and request.path == "/orders" and response.status_code < 300:
            with contextlib.suppress(psycopg.Error):
                response.headers["Write-LSN"] = reads.write_position()
        return response

    app.register_blueprint(blueprint)
