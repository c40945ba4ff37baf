"""PostgreSQL access of the order API: the truth about orders and inventory.

Every operation runs in one transaction on a pooled connection, under a client-side
deadline. PostgreSQL's ``statement_timeout`` only helps when the server is reachable; when
the network swallows packets (a partition, a black-holed proxy) the client must give up by
itself, so a timer shuts the connection's socket down and the blocked call fails at once.
The fragile build has neither, and a black hole blocks its worker thread forever.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.rows import dict_row

from example_suite.shop.config import Resilience

__all__ = [
    "SCHEMA",
    "Database",
    "DatabaseUnavailable",
    "OutOfStock",
    "UnknownProduct",
    "migrate",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    sku text PRIMARY KEY,
    name text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents > 0),
    stock integer NOT NULL CHECK (stock >= 0)
);
CREATE TABLE IF NOT EXISTS orders (
    id bigserial PRIMARY KEY,
    idempotency_key text UNIQUE,
    customer text NOT NULL,
    sku text NOT NULL REFERENCES products (sku),
    qty integer NOT NULL CHECK (qty > 0),
    amount_cents integer NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid')),
    charge_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    paid_at timestamptz
);
"""

_POOL_SIZE = 8


class DatabaseUnavailable(Exception):
    """The database could not be reached or did not answer in time.

    ``retryable`` is true for the failures that came at once and that trying again at
    once can mend: a connection that broke under a call (a reset, a restarted server) or
    a connection refused (the server full or restarting). A deadline or a connect
    timeout took seconds already; asking again would only double the caller's wait.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class UnknownProduct(Exception):
    """The order names a SKU the shop does not sell."""


class OutOfStock(Exception):
    """Not enough stock for the order; nothing was written."""


class _DuplicateKey(Exception):
    """Another request stored an order with this idempotency key first."""


def migrate(conn: psycopg.Connection[Any], products: list[tuple[str, str, int, int]]) -> None:
    """Create the schema and seed ``products`` as ``(sku, name, price_cents, stock)``."""
    with conn.transaction():
        conn.execute(SCHEMA)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO products (sku, name, price_cents, stock) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (sku) DO UPDATE SET stock = EXCLUDED.stock",
                products,
            )


class _Deadline:
    """Shuts a connection's socket down if an operation outlives its time limit.

    A shut-down socket makes libpq's pending read return end-of-file, so psycopg raises
    ``OperationalError`` in the blocked thread and the connection is thrown away.
    """

    def __init__(self, conn: psycopg.Connection[Any], seconds: float) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._finished = False
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            try:
                dup = socket.socket(fileno=os.dup(self._conn.fileno()))
            except (OSError, psycopg.Error):
                return
            with contextlib.closing(dup), contextlib.suppress(OSError):
                dup.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        with self._lock:
            self._finished = True
        self._timer.cancel()


class Database:
    """A small pool of psycopg connections and the shop's queries."""

    def __init__(self, url: str, resilience: Resilience) -> None:
        self.url = url
        self.resilience = resilience
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._closed = False
        # the bounded pool (resilience.pool_wait): connections handed out and not back
        self._in_use = 0
        self._returned = threading.Condition()

    def __repr__(self) -> str:
        return (
            f"<Database {self.url} idle={self._idle.qsize()} timeout={self.resilience.db_timeout}>"
        )

    def _connect(self) -> psycopg.Connection[Any]:
        r = self.resilience
        # A commit is acknowledged to a customer, so it must survive a server crash even
        # on a cluster tuned for speed; the fragile build trades that for speed instead.
        options = [f"-c synchronous_commit={'on' if r.durable_commits else 'off'}"]
        if r.db_timeout is not None:
            options.append(f"-c statement_timeout={int(r.db_timeout * 1000)}")
        kwargs: dict[str, Any] = {"options": " ".join(options)}
        if r.db_connect_timeout is not None:
            kwargs["connect_timeout"] = r.db_connect_timeout
        return psycopg.connect(self.url, row_factory=dict_row, **kwargs)

    def _acquire(self) -> psycopg.Connection[Any]:
        if self.resilience.pool_wait is not None:
            return self._acquire_bounded(self.resilience.pool_wait)
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._connect()

    def _acquire_bounded(self, wait: float) -> psycopg.Connection[Any]:
        """An idle connection, else a new one while the pool has room and PostgreSQL
        accepts it, else wait up to ``wait`` s for one to come back (the queue), else
        shed the request (503 with Retry-After)."""
        deadline = time.monotonic() + wait
        refused = False
        while True:
            with self._returned:
                while True:
                    try:
                        conn = self._idle.get_nowait()
                    except queue.Empty:
                        pass
                    else:
                        self._in_use += 1
                        return conn
                    if not refused and self._in_use < _POOL_SIZE:
                        self._in_use += 1
                        break  # connect, outside the lock: a connect may take seconds
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise DatabaseUnavailable(
                            f"no database connection free within {wait} s "
                            f"({self._in_use} in use, the server accepts no more)"
                        )
                    self._returned.wait(remaining)
            try:
                return self._connect()
            except BaseException as exc:
                with self._returned:
                    self._in_use -= 1
                    self._returned.notify()
                    # No connection slot left (53300; libpq reports a refused login as
                    # text only). Anything else is an outage, and with nothing in use
                    # there is nothing to wait for.
                    full = isinstance(exc, psycopg.OperationalError) and _server_full(exc)
                    if not full or self._in_use == 0:
                        raise
                refused = True

    def _returned_one(self) -> None:
        if self.resilience.pool_wait is None:
            return
        with self._returned:
            self._in_use = max(0, self._in_use - 1)
            self._returned.notify()

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        if self._closed or conn.closed or self._idle.qsize() >= _POOL_SIZE:
            conn.close()
        else:
            self._idle.put(conn)
        self._returned_one()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection, under the deadline.

        Any network trouble becomes :class:`DatabaseUnavailable` and the connection is
        discarded, so a broken connection never goes back to the pool.
        """
        try:
            conn = self._acquire()
        except psycopg.OperationalError as exc:
            timed_out = isinstance(exc, psycopg.errors.ConnectionTimeout) or (
                "timeout expired" in str(exc)
            )
            raise DatabaseUnavailable(
                f"cannot connect to the database: {exc}", retryable=not timed_out
            ) from exc
        timeout = self.resilience.db_timeout
        deadline = _Deadline(conn, timeout) if timeout is not None else None
        healthy = False
        try:
            with conn.transaction():
                yield conn
            healthy = True
        except psycopg.OperationalError as exc:
            if deadline is not None and deadline.expired:
                raise DatabaseUnavailable(f"database did not answer within {timeout}s") from exc
            raise DatabaseUnavailable(f"database connection failed: {exc}", retryable=True) from exc
        finally:
            if deadline is not None:
                deadline.finish()
            if healthy or (not conn.closed and not conn.broken):
                self._release(conn)
            else:
                conn.close()
                self._returned_one()

    def run(self, operation: str, fn: Any, *args: Any) -> Any:
        """Run ``fn(conn, *args)`` in a transaction, retrying once on a lost connection.

        Only idempotent operations come here (reads, and order creation keyed by an
        idempotency key), so a retry can never write twice. A database that did not
        answer within the deadline, or a connection attempt that timed out, is not asked
        again at once: that would only double the caller's wait.
        """
        attempts = max(1, self.resilience.db_attempts)
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as conn:
                    return fn(conn, *args)
            except DatabaseUnavailable as exc:
                if attempt == attempts or not exc.retryable:
                    raise
        raise AssertionError(f"unreachable: {operation}")

    def close(self) -> None:
        """Close every idle connection; connections in use close when released."""
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    # --- queries -------------------------------------------------------------------------

    def get_product(self, sku: str) -> dict[str, Any] | None:
        """The product row, or ``None``."""
        return self.run("get_product", _get_product, sku)  # type: ignore[no-any-return]

    def get_order(self, order_id: int) -> dict[str, Any] | None:
        """The order row, or ``None``."""
        return self.run("get_order", _get_order, order_id)  # type: ignore[no-any-return]

    def create_order(
        self, key: str | None, customer: str, sku: str, qty: int
    ) -> tuple[dict[str, Any], bool]:
        """Store an order and take its stock, atomically; ``(order, created)``.

        With an idempotency key, a second request with the same key returns the first
        order and writes nothing. Without one, each call is a new order; such a call is
        never retried, because a lost reply to a committed insert would write twice.
        """
        if key is None:
            with self.transaction() as conn:
                return _insert_order(conn, None, customer, sku, qty), True
        for _ in range(2):
            try:
                return self.run("create_order", _create_keyed, key, customer, sku, qty)  # type: ignore[no-any-return]
            except _DuplicateKey:
                continue  # the other request has committed by now: the next round finds it
        raise DatabaseUnavailable(f"order with idempotency key {key!r} is being written")

    def mark_paid(self, order_id: int, charge_id: str) -> dict[str, Any] | None:
        """Record the charge on a pending order (a paid order is left as it is)."""
        return self.run("mark_paid", _mark_paid, order_id, charge_id)  # type: ignore[no-any-return]


def _server_full(exc: psycopg.OperationalError) -> bool:
    """Whether PostgreSQL refused a session for want of a connection slot."""
    text = str(exc)
    return (
        exc.sqlstate == "53300"
        or "too many clients" in text
        or "remaining connection slots are reserved" in text
    )


def _get_product(conn: psycopg.Connection[Any], sku: str) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM products WHERE sku = %s", (sku,)).fetchone()


def _get_order(conn: psycopg.Connection[Any], order_id: int) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM orders WHERE id = %s", (order_id,)).fetchone()


def _create_keyed(
    conn: psycopg.Connection[Any], key: str, customer: str, sku: str, qty: int
) -> tuple[dict[str, Any], bool]:
    existing = conn.execute("SELECT * FROM orders WHERE idempotency_key = %s", (key,)).fetchone()
    if existing is not None:
        return existing, False
    return _insert_order(conn, key, customer, sku, qty), True


def _insert_order(
    conn: psycopg.Connection[Any], key: str | None, customer: str, sku: str, qty: int
) -> dict[str, Any]:
    row = conn.execute(
        "UPDATE products SET stock = stock - %s WHERE sku = %s AND stock >= %s "
        "RETURNING price_cents",
        (qty, sku, qty),
    ).fetchone()
    if row is None:
        if conn.execute("SELECT 1 FROM products WHERE sku = %s", (sku,)).fetchone() is None:
            raise UnknownProduct(sku)
        raise OutOfStock(sku)
    order = conn.execute(
        "INSERT INTO orders (idempotency_key, customer, sku, qty, amount_cents) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING RETURNING *",
        (key, customer, sku, qty, row["price_cents"] * qty),
    ).fetchone()
    if order is None:
        # The raise rolls the stock update back with the transaction.
        raise _DuplicateKey(key)
    return order  # type: ignore[no-any-return]


def _mark_paid(
    conn: psycopg.Connection[Any], order_id: int, charge_id: str
) -> dict[str, Any] | None:
    conn.execute(
        "UPDATE orders SET status = 'paid', charge_id = %s, paid_at = now() "
        "WHERE id = %s AND status = 'pending'",
        (charge_id, order_id),
    )
    return _get_order(conn, order_id)
