"""The shop's order events on a Redis Stream: their format and the shop's publisher.

An event is a flat mapping of strings, one stream entry:

- ``id``: unique per event (a consumer applies each id once);
- ``key``: the order it is about (events of one key are ordered by ``seq``);
- ``seq``: the order's version after the event: 1, 2, 3, ...;
- ``status``: the order's status after the event;
- ``sum``: a checksum of the other fields, so that a consumer can tell a damaged event.

The consumer is example_suite/shop/worker.py. The publisher (:class:`EventPublisher`)
writes with ``XADD`` and short timeouts; while the broker cannot be reached it keeps the
events in a bounded in-memory queue, in order, and a background thread sends them once
the broker is back. An event is *acknowledged* when :meth:`EventPublisher.publish`
returns: sent, or queued to be sent. When the queue is full, ``publish`` raises
:class:`BrokerUnavailable` (a clean failure the caller can report). The fragile build
(``SHOP_FRAGILE=event_buffer``) sends once and drops the event on a broker error, as a
fire-and-forget publisher does.
"""

from __future__ import annotations

import collections
import hashlib
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "FIELDS",
    "BrokerUnavailable",
    "EventPublisher",
    "check_event",
    "checksum",
    "make_event",
]

#: the fields the checksum covers, in order
FIELDS = ("id", "key", "seq", "status")


class BrokerUnavailable(Exception):
    """The event could be neither sent nor queued: the caller must treat it as not sent."""


def checksum(fields: Mapping[str, str]) -> str:
    """The checksum of an event's :data:`FIELDS`."""
    text = "\x1f".join(str(fields.get(name, "")) for name in FIELDS)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def make_event(key: str, seq: int, status: str) -> dict[str, str]:
    """A new event: order ``key`` reached version ``seq`` with ``status``."""
    event = {"id": uuid.uuid4().hex, "key": key, "seq": str(seq), "status": status}
    event["sum"] = checksum(event)
    return event


def check_event(fields: Mapping[str, str]) -> str | None:
    """Why the event cannot be applied (missing field, bad ``seq``, checksum mismatch);
    ``None`` when it is sound."""
    missing = [name for name in (*FIELDS, "sum") if not fields.get(name)]
    if missing:
        return f"missing fields {missing}"
    if not fields["seq"].isdigit():
        return f"seq {fields['seq']!r} is not a number"
    if checksum(fields) != fields["sum"]:
        return f"checksum mismatch: {checksum(fields)} != {fields['sum']}"
    return None


class EventPublisher:
    """Publishes events to ``stream`` on the Redis at ``url``.

    ``buffer`` (the resilient build) queues events the broker did not take, up to
    ``limit``, and a thread sends them in order every ``retry_every`` seconds; without
    it a failed send drops the event. Counters: ``sent`` (XADD calls that succeeded,
    retries included), ``queued`` (events that had to wait), ``dropped``, ``errors``.
    """

    def __init__(
        self,
        url: str,
        stream: str,
        *,
        buffer: bool = True,
        limit: int = 10_000,
        timeout: float = 0.25,
        retry_every: float = 0.05,
    ) -> None:
        self.stream = stream
        self.buffer = buffer
        self.limit = limit
        self.retry_every = retry_every
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._queue: collections.deque[dict[str, str]] = collections.deque()
        self._lock = threading.Lock()  # one send at a time: the stream keeps our order
        self._wake = threading.Event()
        self._closed = threading.Event()
        self.sent = 0
        self.queued = 0
        self.dropped = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._drain, name="event-publisher", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return (
            f"<EventPublisher {self.stream} waiting={len(self._queue)} sent={self.sent} "
            f"queued={self.queued} dropped={self.dropped} errors={self.errors}>"
        )

    @property
    def waiting(self) -> int:
        """Events queued and not sent yet."""
        return len(self._queue)

    def _send(self, event: Mapping[str, str]) -> bool:
        try:
            fields: dict[Any, Any] = dict(event)
            self._client.xadd(self.stream, fields)
        except redis.RedisError:
            self.errors += 1
            return False
        self.sent += 1
        return True

    def publish(self, event: Mapping[str, str]) -> None:
        """Send ``event``, or queue it while the broker is unreachable (in order: once
        an event waits, later ones wait behind it). Raises :class:`BrokerUnavailable`
        when the queue is full."""
        with self._lock:
            if not self._queue and self._send(event):
                return
            if not self.buffer:
                self.dropped += 1  # fire and forget: the event is gone
                return
            if len(self._queue) >= self.limit:
                raise BrokerUnavailable(
                    f"broker unreachable and {len(self._queue)} events already waiting"
                )
            self._queue.append(dict(event))
            self.queued += 1
        self._wake.set()

    def _drain(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.retry_every)
            self._wake.clear()
            with self._lock:
                while self._queue and self._send(self._queue[0]):
                    self._queue.popleft()
                stuck = bool(self._queue)
            if stuck:
                self._closed.wait(self.retry_every)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the queue to empty; whether it did."""
        end = time.monotonic() + timeout
        while self._queue and time.monotonic() < end:
            self._wake.set()
            time.sleep(0.01)
        return not self._queue

    def close(self) -> None:
        """Stop the sending thread and close the connection (queued events are dropped)."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=2)
        self._client.close()
