"""The test bed of the order-event broker: the stream, its consumers, the ground truth.

::

    EventPublisher --> chaos.proxy("broker")   --> Redis Stream <stream>
    worker-1, ...  --> chaos.proxy("consumer") --> (consumer group <group>)
                   --> PostgreSQL (directly): event_effects, order_state

The publisher is the shop's (example_suite/shop/events.py), the workers are
``python -m example_suite.shop.worker`` processes run by ``chaos_services.process``
(service faults work on them). The ground truth is read directly, bypassing every proxy.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import redis

from example_suite.shop.events import EventPublisher
from example_suite.shop.harness import REPO_ROOT, ShopClient, http_url
from example_suite.shop.worker import SCHEMA
from pytest_chaos import ChaosProxy
from pytest_chaos.services import ChaosServices, Service

__all__ = ["Broker"]

#: the line ``python -m example_suite.shop.worker`` prints once it consumes
WORKER_READY = r"worker listening on http://127\.0\.0\.1:(\d+)"


@dataclass
class Broker:
    """One test's stream, consumer group, proxies, workers and effects database."""

    services: ChaosServices
    redis_direct: str  # redis://host:port/0 of Redis itself, for the ground truth
    producer_proxy: ChaosProxy
    consumer_proxy: ChaosProxy
    database_url: str
    stream: str
    group: str
    fragile: str
    publisher: EventPublisher = field(init=False)
    workers: list[Service] = field(default_factory=list)

    def __post_init__(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(SCHEMA)
        self.redis = redis.Redis.from_url(self.redis_direct, decode_responses=True)
        try:
            self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:  # pragma: no cover - a fresh name every test
            if "BUSYGROUP" not in str(exc):
                raise
        self.publisher = EventPublisher(
            f"redis://{self.producer_proxy.address}/0",
            self.stream,
            buffer="event_buffer" not in _removed(self.fragile),
        )

    def __repr__(self) -> str:
        return f"<Broker {self.stream} workers={[w.name for w in self.workers]}>"

    def start_worker(self, name: str | None = None, **env: str) -> Service:
        """Start a consumer process (``SHOP_WORKER_*`` settings in ``env``)."""
        name = name or f"worker-{len(self.workers) + 1}"
        full_env = {
            "SHOP_FRAGILE": self.fragile,
            "PYTHONPATH": os.pathsep.join(
                [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            **env,
        }
        process = self.services.process(
            [
                sys.executable,
                "-m",
                "example_suite.shop.worker",
                "--redis",
                f"redis://{self.consumer_proxy.address}/0",
                "--stream",
                self.stream,
                "--group",
                self.group,
                "--consumer",
                name,
                "--database",
                self.database_url,
                "--port",
                "{port}",
            ],
            ready=WORKER_READY,
            env=full_env,
            name=name,
            cwd=REPO_ROOT,
        )
        self.workers.append(process)
        return process

    def worker_health(self, worker: Service) -> dict[str, Any]:
        """A worker's counters (raises when it does not answer)."""
        client = ShopClient(http_url(worker), timeout=1.0)
        try:
            return dict(client.get("/health"))
        finally:
            client.close()

    # -- the ground truth -------------------------------------------------------------

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql).fetchall()

    def effects(self) -> Counter[str]:
        """How many times each event id was applied."""
        return Counter(row[0] for row in self._query("SELECT event_id FROM event_effects"))

    def effects_by_key(self) -> Counter[str]:
        """How many events of each order (key) were applied."""
        return Counter(row[0] for row in self._query("SELECT key FROM event_effects"))

    def applied_by_key(self, value: str = "event_id") -> dict[str, list[Any]]:
        """Per order (key), the ``value`` column (``event_id`` or ``seq``) of each applied
        event, repeats kept: what the history check reads back."""
        if value not in ("event_id", "seq"):
            raise ValueError(f"value={value!r}: use 'event_id' or 'seq'")
        found: dict[str, list[Any]] = {}
        for key, v in self._query(f"SELECT key, {value} FROM event_effects ORDER BY n"):
            found.setdefault(key, []).append(v)
        return found

    def applied_in_order(self) -> list[tuple[str, int]]:
        """``(key, seq)`` of every applied event, in the order they were applied."""
        return [(k, s) for k, s in self._query("SELECT key, seq FROM event_effects ORDER BY n")]

    def order_state(self) -> dict[str, tuple[int, str]]:
        """Each order's stored ``(seq, status)``."""
        return {k: (s, st) for k, s, st in self._query("SELECT key, seq, status FROM order_state")}

    def dead_letters(self) -> list[dict[str, str]]:
        """The entries of the dead-letter stream."""
        entries: Any = self.redis.xrange(f"{self.stream}:dead")
        return [fields for _, fields in entries]

    def pending(self) -> int:
        """Entries delivered to a consumer of the group and not acknowledged."""
        return int(self.redis.xpending(self.stream, self.group)["pending"])

    def drained(self) -> bool:
        """Whether the group was handed the stream's last entry and acknowledged all."""
        last = self.redis.xinfo_stream(self.stream)["last-generated-id"]
        groups = {g["name"]: g for g in self.redis.xinfo_groups(self.stream)}
        group = groups[self.group]
        return bool(group["last-delivered-id"] == last and group["pending"] == 0)

    def wait_for(
        self, done: Callable[[], bool], timeout: float, every: float = 0.05
    ) -> tuple[bool, float]:
        """Poll ``done`` until it holds or ``timeout`` passes: ``(held, seconds)``."""
        start = time.monotonic()
        while True:
            if done():
                return True, time.monotonic() - start
            if time.monotonic() - start >= timeout:
                return False, time.monotonic() - start
            time.sleep(every)

    def close(self) -> None:
        """Stop the publisher, the workers and the direct Redis client."""
        self.publisher.close()
        for worker in self.workers:
            worker.remove()
        self.redis.close()


def _removed(fragile: str) -> frozenset[str]:
    from example_suite.shop.config import parse_fragile

    return parse_fragile(fragile)
