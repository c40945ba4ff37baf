"""The shop's job scheduler: replicas elect one leader through a lease, and only the
leader runs the jobs, each written to PostgreSQL with the leader's fencing token.

Run several as ``python -m example_suite.shop.scheduler --replica NAME``, configured by
``SHOP_LEASE_URL`` (the Redis holding the lease, normally a chaos proxy per replica),
``SHOP_LEASE_KEY``, ``SHOP_LEASE_TTL_MS`` (default 1000) and ``SHOP_DATABASE_URL``.

The lease is ``SET key replica NX PX ttl``; whoever wins takes the next fencing token
(``INCR key:token``) and renews every third of the TTL (a compare-and-expire script).
Each tick (every 50 ms) the leader runs a job: one row in ``scheduled_jobs`` with its
token. Two protections keep a partition from making two leaders:

- the leader steps down by itself once it could not renew for 80% of the TTL (before
  the lease can expire in Redis and another replica take it);
- PostgreSQL refuses a job whose token is lower than the highest it has seen (a trigger
  on ``scheduled_jobs`` checks it against ``job_fence`` under a row lock), so a leader
  that lost its lease without noticing (a pause, a slow clock) writes nothing.

``SHOP_FRAGILE=fencing`` removes both: a leader that cannot reach Redis assumes it still
leads, and the database takes any token.

Every job it tries is printed as ``job <replica> token=<n> at=<unix time> accepted`` (or
``fenced``), and each change of role as ``leader <replica> token=<n> at=...`` or
``follower <replica> at=... (<why>)``, for the experiments to read.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import time
from types import FrameType
from typing import Any

import psycopg
import redis

from example_suite.shop.config import parse_fragile

__all__ = ["FENCED_SCHEMA", "SCHEMA", "Scheduler", "main", "migrate"]

_TICK = 0.05
_STEP_DOWN = 0.8  # share of the TTL without a renewal after which a leader steps down

SCHEMA = """
CREATE TABLE IF NOT EXISTS scheduled_jobs (
    id bigserial PRIMARY KEY,
    token bigint NOT NULL,
    replica text NOT NULL,
    at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS job_fence (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    max_token bigint NOT NULL
);
INSERT INTO job_fence (max_token) VALUES (0) ON CONFLICT DO NOTHING;
"""

#: the fencing check, in the database: a lower token than the highest seen is refused
FENCED_SCHEMA = """
CREATE OR REPLACE FUNCTION fence_job() RETURNS trigger AS $$
DECLARE highest bigint;
BEGIN
    SELECT max_token INTO highest FROM job_fence FOR UPDATE;
    IF NEW.token < highest THEN
        RAISE EXCEPTION 'fenced: token % < %', NEW.token, highest USING ERRCODE = 'P0001';
    END IF;
    UPDATE job_fence SET max_token = NEW.token;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS fence_job ON scheduled_jobs;
CREATE TRIGGER fence_job BEFORE INSERT ON scheduled_jobs
    FOR EACH ROW EXECUTE FUNCTION fence_job();
"""

# renew only a lease we still hold
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


def migrate(db_url: str, *, fenced: bool) -> None:
    """Create the jobs table (and, ``fenced``, the database's fencing check)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        if fenced:
            conn.execute(FENCED_SCHEMA)


def _say(line: str) -> None:
    print(line, flush=True)


class Scheduler:
    """One replica of the scheduler."""

    def __init__(
        self, replica: str, lease_url: str, key: str, ttl_ms: int, db_url: str, fenced: bool
    ) -> None:
        self.replica = replica
        self.key = key
        self.ttl_ms = ttl_ms
        self.fenced = fenced
        self.lease = redis.Redis.from_url(
            lease_url, socket_timeout=0.2, socket_connect_timeout=0.2, retry_on_timeout=False
        )
        self.db_url = db_url
        self._db: psycopg.Connection[Any] | None = None
        self.token: int | None = None  # set while leading
        self._renewed = 0.0  # monotonic time of the last successful renewal
        self._stop = False

    def _conn(self) -> psycopg.Connection[Any]:
        if self._db is None or self._db.closed or self._db.broken:
            self._db = psycopg.connect(self.db_url, autocommit=True, connect_timeout=2)
        return self._db

    def _lead(self, token: int, why: str) -> None:
        self.token = token
        self._renewed = time.monotonic()
        _say(f"leader {self.replica} token={token} at={time.time():.3f} ({why})")

    def _follow(self, why: str) -> None:
        self.token = None
        _say(f"follower {self.replica} at={time.time():.3f} ({why})")

    def _campaign(self) -> None:
        try:
            if self.lease.set(self.key, self.replica, nx=True, px=self.ttl_ms):
                self._lead(int(self.lease.incr(f"{self.key}:token")), "won the lease")
        except redis.RedisError:
            pass  # cannot reach the lease store: stay a follower

    def _renew(self) -> None:
        now = time.monotonic()
        if now - self._renewed < self.ttl_ms / 3000:
            return
        try:
            held = self.lease.eval(_RENEW, 1, self.key, self.replica, self.ttl_ms)
        except redis.RedisError as exc:
            # Fragile: an unreachable lease store is taken to mean nothing changed.
            if self.fenced and now - self._renewed > _STEP_DOWN * self.ttl_ms / 1000:
                self._follow(f"could not renew for {now - self._renewed:.2f} s: {exc}")
            return
        if held:
            self._renewed = now
        else:
            self._follow("the lease is held by another replica")

    def _run_job(self) -> None:
        assert self.token is not None
        at = time.time()
        try:
            self._conn().execute(
                "INSERT INTO scheduled_jobs (token, replica, at) VALUES (%s, %s, %s)",
                (self.token, self.replica, at),
            )
            outcome = "accepted"
        except psycopg.errors.RaiseException:
            outcome = "fenced"
        except psycopg.Error as exc:
            outcome = f"failed ({type(exc).__name__})"
        _say(f"job {self.replica} token={self.token} at={at:.3f} {outcome}")
        if outcome == "fenced":
            self._follow("the database fenced off an old token")

    def run(self, port: int = 0) -> None:
        """Campaign, renew and run jobs every tick until SIGTERM.

        It listens on ``port`` (0: any free one) for liveness probes and announces it.
        """
        with socket.create_server(("127.0.0.1", port)) as probe:
            _say(f"scheduler {self.replica} ready on 127.0.0.1:{probe.getsockname()[1]}")
            self._loop()

    def _loop(self) -> None:
        while not self._stop:
            if self.token is None:
                self._campaign()
            else:
                self._renew()
            if self.token is not None:
                self._run_job()
            time.sleep(_TICK)

    def stop(self) -> None:
        """End the loop after the current tick."""
        self._stop = True


def main(argv: list[str] | None = None) -> int:
    """Parse ``--replica``, read the environment, run until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m example_suite.shop.scheduler")
    parser.add_argument("--replica", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    fenced = "fencing" not in parse_fragile(os.environ.get("SHOP_FRAGILE", ""))
    db_url = os.environ["SHOP_DATABASE_URL"]
    scheduler = Scheduler(
        args.replica,
        os.environ["SHOP_LEASE_URL"],
        os.environ.get("SHOP_LEASE_KEY", "scheduler:lease"),
        int(os.environ.get("SHOP_LEASE_TTL_MS", "1000")),
        db_url,
        fenced,
    )

    def _stop(signum: int, frame: FrameType | None) -> None:
        scheduler.stop()

    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt):
        scheduler.run(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
