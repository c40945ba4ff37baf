"""Redis in the order API: a cache and a fast path for idempotency keys, never the truth.

The shop must keep selling when Redis is gone, so every Redis call is best effort: a
failure is logged as "degraded" and the caller falls back to PostgreSQL. Short socket
timeouts keep a black-holed Redis from stalling requests, and after a failure the cache
is skipped for a moment so that each request does not pay the timeout again.
"""

from __future__ import annotations

import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from example_suite.shop.config import Resilience

__all__ = ["Cache"]


class Cache:
    """Best-effort Redis access under a key prefix."""

    def __init__(self, url: str, prefix: str, resilience: Resilience) -> None:
        self.prefix = prefix
        self.resilience = resilience
        # redis-py's own retries would multiply every timeout; the shop decides itself.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=resilience.redis_timeout,
            socket_connect_timeout=resilience.redis_timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._lock = threading.Lock()
        # What counts as "Redis unavailable": any error it reports, or (fragile) only a
        # lost or timed-out connection, so that "OOM command not allowed" fails the request.
        self._errors: tuple[type[Exception], ...] = (
            (redis.RedisError,)
            if resilience.cache_errors
            else (redis.ConnectionError, redis.TimeoutError)
        )
        self._skip_until = 0.0
        self.failures = 0
        self.skipped = 0

    def __repr__(self) -> str:
        return f"<Cache prefix={self.prefix!r} state={self.state} failures={self.failures}>"

    @property
    def state(self) -> str:
        """``"ok"``, or ``"degraded"`` while Redis is being skipped after a failure."""
        return "degraded" if time.monotonic() < self._skip_until else "ok"

    def _usable(self) -> bool:
        if time.monotonic() < self._skip_until:
            with self._lock:
                self.skipped += 1
            return False
        return True

    def _failed(self) -> None:
        with self._lock:
            self.failures += 1
            self._skip_until = time.monotonic() + self.resilience.redis_retry_after

    def get(self, key: str) -> str | None:
        """The cached value, or ``None`` when absent or when Redis is unavailable."""
        if not self._usable():
            return None
        try:
            value = self._client.get(f"{self.prefix}:{key}")
        except self._errors:
            self._failed()
            return None
        return value if isinstance(value, str) else None

    def set(self, key: str, value: str, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds, if Redis is there to take it."""
        if not self._usable():
            return
        try:
            self._client.set(f"{self.prefix}:{key}", value, px=int(ttl * 1000))
        except self._errors:
            self._failed()

    def delete(self, key: str) -> None:
        """Forget ``key``; a missed delete is bounded by the entry's TTL."""
        if not self._usable():
            return
        try:
            self._client.delete(f"{self.prefix}:{key}")
        except self._errors:
            self._failed()

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
