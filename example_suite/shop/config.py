"""Configuration of the order API, read from the environment.

The resilient defaults are what a careful team ships. ``SHOP_FRAGILE`` removes
protections, the way a first version of a service often looks: ``1`` (or ``all``) removes
every one, a comma-separated list removes some (see :data:`PROTECTIONS`), so a test can
show which experiment catches which missing protection.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

__all__ = ["PROTECTIONS", "Resilience", "ShopConfig", "parse_fragile"]

_ALL = {"1", "true", "yes", "on", "all"}
_NONE = {"", "0", "false", "no", "off", "none"}

#: what each name in ``SHOP_FRAGILE`` removes
PROTECTIONS: dict[str, str] = {
    "timeouts": "every timeout (database, Redis, payment provider)",
    "breaker": "the circuit breaker on payments",
    "idempotency": "idempotency keys on orders and charges (and the paid-order check)",
    "backoff": "retry discipline: 5 immediate payment attempts, no database retry",
    "durability": "durable commits: synchronous_commit=off for speed",
    "stale_reads": "serving the last product read when Redis and PostgreSQL both fail "
    "(a 503 instead)",
    "retry_after": "honouring a payment provider's 429 Retry-After (429 retried like a 5xx)",
    "pool": "the bounded database pool: requests queue for a held connection when "
    "PostgreSQL refuses new ones, shed with 503 + Retry-After after 1 s",
    "hedging": "hedged reads in the replica balancer: a read a replica has not answered "
    "in 50 ms is sent to another replica too",
    "cache_errors": "every Redis error is a cache miss (not only a lost connection): an "
    "out-of-memory Redis refusing writes degrades the cache, not the request",
    "event_buffer": "buffering order events while the broker is down (lost instead)",
    "dedup": "the idempotent event consumer (each delivery applied, duplicates too)",
    "ordering": "the version check on per-order state (a late event overwrites a newer one)",
    "reclaim": "reclaiming a dead consumer's pending events (XAUTOCLAIM)",
    "dead_letter": "the dead-letter stream (a corrupted event crashes the consumer)",
    "read_your_writes": "routing reads by the replica's position: a read after a write "
    "waits for the replica to replay it (else the primary), a stale read goes to the "
    "replica only while it lags under the bound",
    "fencing": "the scheduler's fencing: a leader that cannot renew its lease keeps "
    "leading, and the database takes a job with any token",
    "zone_isolation": "each zone's replica reaching the data stores through its own zone "
    "(without: zone B's replica is wired through zone A's paths, a cross-zone dependency)",
}


def parse_fragile(value: str) -> frozenset[str]:
    """The protections ``SHOP_FRAGILE=value`` removes (empty: the resilient build)."""
    text = value.strip().lower()
    if text in _NONE:
        return frozenset()
    if text in _ALL:
        return frozenset(PROTECTIONS)
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(PROTECTIONS))
    if unknown:
        raise ValueError(
            f"SHOP_FRAGILE={value!r} names unknown protections {unknown}; use 1 (all), 0 "
            f"(none) or a comma-separated list of {sorted(PROTECTIONS)}"
        )
    return frozenset(names)


@dataclass(frozen=True)
class Resilience:
    """The protections of the order API.

    Times are in seconds. ``None`` means "no limit", which is what the fragile build uses:
    a call to a dependency that never answers then blocks its worker thread forever.
    """

    db_timeout: float | None = 1.0
    db_connect_timeout: int | None = 2  # libpq counts whole seconds, at least 2
    redis_timeout: float | None = 0.25
    redis_retry_after: float = 1.0  # after a Redis failure, skip Redis this long
    payments_connect_timeout: float | None = 0.5
    payments_timeout: float | None = 1.0
    payments_attempts: int = 3
    backoff_initial: float = 0.05
    backoff_max: float = 0.4
    breaker: bool = True
    breaker_window: int = 10  # the last N payment attempts judge the failure rate
    breaker_min_calls: int = 5
    breaker_failure_rate: float = 0.2
    breaker_reset: float = 3.0
    idempotency_keys: bool = True  # on orders, on charges, and paying a paid order
    durable_commits: bool = True  # an acknowledged order survives a database crash
    db_attempts: int = 2
    # when the cache and the database both fail, a product is served from the last read
    # this process made (marked stale): each alone is covered by the other
    stale_reads: bool = True
    honour_retry_after: bool = True  # a 429's Retry-After stops payment calls until then
    # seconds a request waits for a pooled connection when PostgreSQL refuses a new one
    # (then 503); None: no bounded pool, a request that finds none idle opens its own
    pool_wait: float | None = 1.0
    # any Redis error (OOM, MISCONF, READONLY) is a cache miss; False: only network errors
    cache_errors: bool = True

    @classmethod
    def without(cls, removed: frozenset[str] | set[str]) -> Resilience:
        """The build with the named :data:`PROTECTIONS` removed."""
        changes: dict[str, object] = {}
        if "timeouts" in removed:
            changes.update(
                db_timeout=None,
                db_connect_timeout=None,
                redis_timeout=None,
                redis_retry_after=0.0,
                payments_connect_timeout=None,
                payments_timeout=None,
            )
        if "breaker" in removed:
            changes.update(breaker=False)
        if "idempotency" in removed:
            changes.update(idempotency_keys=False)
        if "durability" in removed:
            changes.update(durable_commits=False)
        if "retry_after" in removed:
            changes.update(honour_retry_after=False)
        if "pool" in removed:
            changes.update(pool_wait=None)
        if "cache_errors" in removed:
            changes.update(cache_errors=False)
        if "stale_reads" in removed:
            changes.update(stale_reads=False)
        if "backoff" in removed:
            changes.update(payments_attempts=5, backoff_initial=0.0, backoff_max=0.0, db_attempts=1)
        return replace(cls(), **changes)  # type: ignore[arg-type]

    @classmethod
    def fragile(cls) -> Resilience:
        """The naive build: no timeouts, no breaker, no idempotency keys, eager retries."""
        return cls.without(frozenset(PROTECTIONS))


@dataclass(frozen=True)
class ShopConfig:
    """Where the order API finds its dependencies and how carefully it talks to them."""

    database_url: str
    redis_url: str
    payments_url: str
    redis_prefix: str = "shop"
    #: redis://host:port/0 of the broker the order events go to (None: no events)
    events_url: str | None = None
    events_stream: str = "order-events"
    removed: frozenset[str] = frozenset()
    resilience: Resilience = field(default_factory=Resilience)

    @property
    def fragile(self) -> bool:
        """Whether any protection was removed."""
        return bool(self.removed)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ShopConfig:
        """Read ``SHOP_DATABASE_URL``, ``SHOP_REDIS_URL``, ``SHOP_PAYMENTS_URL``,
        ``SHOP_REDIS_PREFIX`` and ``SHOP_FRAGILE``; optional ``SHOP_BREAKER_RESET``, and
        ``SHOP_EVENTS_URL`` with ``SHOP_EVENTS_STREAM`` to publish order events.
        """
        env = os.environ if env is None else env
        missing = [
            name
            for name in ("SHOP_DATABASE_URL", "SHOP_REDIS_URL", "SHOP_PAYMENTS_URL")
            if not env.get(name)
        ]
        if missing:
            raise ValueError(
                f"the order API needs {', '.join(missing)} in its environment "
                "(postgresql://user@host:port/db, redis://host:port/0, http://host:port); "
                "set them, normally to the addresses of pytest-chaos proxies"
            )
        removed = parse_fragile(env.get("SHOP_FRAGILE", ""))
        resilience = Resilience.without(removed)
        reset = env.get("SHOP_BREAKER_RESET")
        if reset:
            resilience = replace(resilience, breaker_reset=float(reset))
        return cls(
            database_url=env["SHOP_DATABASE_URL"],
            redis_url=env["SHOP_REDIS_URL"],
            payments_url=env["SHOP_PAYMENTS_URL"].rstrip("/"),
            redis_prefix=env.get("SHOP_REDIS_PREFIX", "shop"),
            events_url=env.get("SHOP_EVENTS_URL") or None,
            events_stream=env.get("SHOP_EVENTS_STREAM", "order-events"),
            removed=removed,
            resilience=resilience,
        )
