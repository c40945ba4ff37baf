"""The order-event consumer: ``python -m example_suite.shop.worker``.

::

    python -m example_suite.shop.worker --redis redis://HOST:PORT/0 --stream S \\
        --group G --consumer NAME --database postgresql://... [--port N]

One consumer of a Redis Streams consumer group. It applies each order event to
PostgreSQL (a row in ``event_effects`` per applied event, and the order's latest state in
``order_state``), then acknowledges the batch (``XACK``). Delivery is at least once, so
the consumer is built for it:

- idempotent: an event id is applied once (``processed_events`` has the id as primary
  key, in the same transaction as the effect), however often it is delivered;
- ordering tolerated: ``order_state`` only moves forward (an event older than the stored
  version changes nothing), so a late event cannot overwrite a newer one;
- reclaim: after a reconnect it first re-reads its own pending entries (delivered, not
  acknowledged: the answer may have been lost), and every ``--claim-every`` seconds it
  takes over entries another consumer left pending longer than ``--claim-idle`` ms
  (``XAUTOCLAIM``: that consumer died mid-batch);
- dead letters: an event that fails its checksum goes, with the reason, to the stream
  ``<stream>:dead`` and is acknowledged; the consumer keeps going.

``SHOP_FRAGILE`` removes these (``dedup``, ``ordering``, ``reclaim``, ``dead_letter``):
without ``dead_letter`` a damaged event raises and the process exits, as a consumer
without a poison-message path does.

It serves ``GET /health`` on 127.0.0.1 (``--port``, 0 by default) with its counters, and
prints ``worker listening on http://127.0.0.1:<port>`` once it runs, which is how
``chaos_services.process`` learns it is ready. SIGTERM stops it. ``--delay`` (seconds
per event) slows it down, for experiments that need to catch it mid-batch.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from example_suite.shop.config import parse_fragile
from example_suite.shop.events import check_event

__all__ = ["SCHEMA", "Consumer", "PoisonMessage", "main"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS event_effects (
    n bigserial PRIMARY KEY,
    event_id text NOT NULL,
    key text NOT NULL,
    seq integer NOT NULL,
    consumer text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS processed_events (event_id text PRIMARY KEY);
CREATE TABLE IF NOT EXISTS order_state (
    key text PRIMARY KEY,
    seq integer NOT NULL,
    status text NOT NULL
);
"""


class PoisonMessage(Exception):
    """An event the consumer cannot apply (the fragile build dies of it)."""


class Consumer:
    """One consumer of ``group`` on ``stream``, applying events to ``database``."""

    def __init__(
        self,
        *,
        redis_url: str,
        stream: str,
        group: str,
        name: str,
        database: str,
        removed: frozenset[str] = frozenset(),
        batch: int = 20,
        block_ms: int = 100,
        claim_idle_ms: int = 500,
        claim_every: float = 0.25,
        delay: float = 0.0,
        timeout: float = 0.5,
    ) -> None:
        self.stream = stream
        self.dead_stream = f"{stream}:dead"
        self.group = group
        self.name = name
        self.removed = removed
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.claim_every = claim_every
        self.delay = delay
        self.retry_pause = 0.05
        # a blocking read must not time out on the client side before Redis answers
        self._redis = redis.Redis.from_url(
            redis_url,
            socket_timeout=timeout + block_ms / 1000,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._database = database
        self._db: psycopg.Connection[Any] | None = None
        self.stopping = threading.Event()
        self.counts = {
            "applied": 0,
            "duplicates": 0,
            "dead_lettered": 0,
            "reclaimed": 0,
            "redelivered": 0,
            "errors": 0,
        }
        self.last_error = ""

    def __repr__(self) -> str:
        return f"<Consumer {self.name} of {self.group} on {self.stream} {self.counts}>"

    # -- the database side ------------------------------------------------------------

    def _conn(self) -> psycopg.Connection[Any]:
        if self._db is None or self._db.closed or self._db.broken:
            self._db = psycopg.connect(self._database, autocommit=True, connect_timeout=2)
        return self._db

    def apply(self, fields: dict[str, str]) -> bool:
        """Apply one sound event; False when its id was applied before."""
        conn = self._conn()
        key, seq = fields["key"], int(fields["seq"])
        with conn.transaction():
            if "dedup" not in self.removed:
                cur = conn.execute(
                    "INSERT INTO processed_events VALUES (%s) ON CONFLICT DO NOTHING",
                    (fields["id"],),
                )
                if cur.rowcount == 0:
                    return False
            conn.execute(
                "INSERT INTO event_effects (event_id, key, seq, consumer) VALUES (%s, %s, %s, %s)",
                (fields["id"], key, seq, self.name),
            )
            newer = "" if "ordering" in self.removed else " WHERE order_state.seq < EXCLUDED.seq"
            conn.execute(
                "INSERT INTO order_state VALUES (%s, %s, %s) ON CONFLICT (key) DO UPDATE "
                "SET seq = EXCLUDED.seq, status = EXCLUDED.status" + newer,
                (key, seq, fields["status"]),
            )
        return True

    # -- the stream side --------------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the consumer group (from the stream's start) unless it exists."""
        try:
            self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def handle(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Apply a batch, then acknowledge it."""
        done: list[str] = []
        for entry_id, fields in entries:
            if self.delay:
                time.sleep(self.delay)
            reason = check_event(fields)
            if reason is not None:
                if "dead_letter" in self.removed:
                    raise PoisonMessage(f"cannot apply entry {entry_id} {fields}: {reason}")
                dead: dict[Any, Any] = {**fields, "entry": entry_id, "reason": reason}
                self._redis.xadd(self.dead_stream, dead)
                self.counts["dead_lettered"] += 1
            elif self.apply(fields):
                self.counts["applied"] += 1
            else:
                self.counts["duplicates"] += 1
            done.append(entry_id)
        if done:
            self._redis.xack(self.stream, self.group, *done)

    def _read(self, start: str) -> list[tuple[str, dict[str, str]]]:
        block = None if start == "0" else self.block_ms
        reply: Any = self._redis.xreadgroup(
            self.group, self.name, {self.stream: start}, count=self.batch, block=block
        )
        if not reply:
            return []
        entries: list[tuple[str, dict[str, str]]] = reply[0][1]
        return [(entry_id, fields) for entry_id, fields in entries if fields]

    def _claim(self) -> list[tuple[str, dict[str, str]]]:
        reply = self._redis.xautoclaim(
            self.stream, self.group, self.name, self.claim_idle_ms, "0-0", count=self.batch
        )
        entries: list[tuple[str, dict[str, str]]] = reply[1]
        return [(entry_id, fields) for entry_id, fields in entries if fields]

    def run(self) -> None:
        """Consume until :attr:`stopping` is set (a poison message ends it early in the
        fragile build)."""
        reclaim = "reclaim" not in self.removed
        own_pending = reclaim  # after (re)connecting: what was delivered to us, unacked
        connected = False  # the group checked on this connection
        next_claim = 0.0
        while not self.stopping.is_set():
            try:
                self._conn()
                if not connected:
                    self.ensure_group()
                    connected = True
                if own_pending:
                    entries = self._read("0")
                    if entries:
                        self.counts["redelivered"] += len(entries)
                        self.handle(entries)
                        continue
                    own_pending = False
                if reclaim and time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + self.claim_every
                    entries = self._claim()
                    if entries:
                        self.counts["reclaimed"] += len(entries)
                        self.handle(entries)
                        continue
                self.handle(self._read(">"))
            except (redis.RedisError, psycopg.Error) as exc:
                self.counts["errors"] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                own_pending = reclaim
                connected = False
                self.stopping.wait(self.retry_pause)


def _serve_health(consumer: Consumer, port: int) -> ThreadingHTTPServer:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {"consumer": consumer.name, **consumer.counts, "last_error": consumer.last_error}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Health)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="health", daemon=True
    ).start()
    return server


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, prepare the tables, serve health, consume until SIGTERM."""
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m example_suite.shop.worker")
    parser.add_argument("--redis", required=True, help="redis://host:port/db of the broker")
    parser.add_argument("--stream", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--database", required=True, help="postgresql:// URL for the effects")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--batch", type=int, default=int(env.get("SHOP_WORKER_BATCH", "20")))
    parser.add_argument("--block-ms", type=int, default=int(env.get("SHOP_WORKER_BLOCK_MS", "100")))
    parser.add_argument(
        "--claim-idle", type=int, default=int(env.get("SHOP_WORKER_CLAIM_IDLE_MS", "500"))
    )
    parser.add_argument(
        "--claim-every", type=float, default=float(env.get("SHOP_WORKER_CLAIM_EVERY", "0.25"))
    )
    parser.add_argument("--delay", type=float, default=float(env.get("SHOP_WORKER_DELAY", "0")))
    args = parser.parse_args(argv)

    consumer = Consumer(
        redis_url=args.redis,
        stream=args.stream,
        group=args.group,
        name=args.consumer,
        database=args.database,
        removed=parse_fragile(env.get("SHOP_FRAGILE", "")),
        batch=args.batch,
        block_ms=args.block_ms,
        claim_idle_ms=args.claim_idle,
        claim_every=args.claim_every,
        delay=args.delay,
    )
    with psycopg.connect(args.database, autocommit=True) as conn:
        conn.execute(SCHEMA)
    server = _serve_health(consumer, args.port)

    def _stop(signum: int, frame: FrameType | None) -> None:
        consumer.stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    print(f"worker listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        consumer.run()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
