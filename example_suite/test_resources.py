"""Chaos experiments on resources: database connection slots, CPU, Redis's memory.

Each fault is a resource running out, not a network failure: PostgreSQL with no
connection slot left, one replica of the order API starved of CPU, Redis out of memory.
The shop's answer to each is a protection of its own (see ``SHOP_FRAGILE``): a bounded
database pool that queues, hedged reads in the replica balancer, a cache that takes any
Redis error for a miss.
"""

from __future__ import annotations

import collections
import os

import pytest

from example_suite.shop.config import parse_fragile
from example_suite.shop.harness import ReplicaClient, ShopRequestFailed, http_url
from example_suite.shop.testbed import Shop
from pytest_chaos import Chaos

REMOVED = parse_fragile(os.environ.get("SHOP_FRAGILE", ""))


@pytest.mark.chaos(blast_radius=["postgres"])
def test_a_full_database_queues_orders_instead_of_failing_them(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: while another client holds every PostgreSQL connection slot (a new
    session gets "sorry, too many clients already"), four customers ordering at once are
    served on the connections the shop already holds: requests queue for them (p99 under
    2 s), under 5 % fail, and each failure is a clean 503; once the slots are free the
    shop takes orders at once."""
    statuses: collections.Counter[int | None] = collections.Counter()

    def order() -> None:
        try:
            shop.place_order()
        except ShopRequestFailed as exc:
            statuses[exc.status] += 1
            raise

    chaos.steady_state(shop.place_order, calls=5, p99=1.0)
    with chaos.exhaust_connections(shop.db, server=shop.backing.postgres) as full:
        assert "too many clients" in full.attributes["refusal"], full.attributes
        chaos.steady_state(order, duration=2.0, concurrency=4, p99=2.0, max_error_rate=0.05)
    assert set(statuses) <= {503}, f"failures must be 503s with Retry-After: {dict(statuses)}"
    chaos.recovers(shop.place_order, within=2.0)


@pytest.mark.chaos(blast_radius=["orders-1", "orders-2"])
def test_a_cpu_starved_replica_does_not_set_the_tail_latency(chaos: Chaos, start_shop) -> None:
    """Hypothesis: browsing through the balancer keeps p99 under 250 ms with no error
    while one of two order-API replicas is starved of CPU, first by a noisy neighbour
    (four busy loops confined with it to one CPU, as stress tools do), then by a CPU
    limit (throttled to a tenth of a CPU over a 500 ms period: frozen 450 ms at a time).

    The busy loops cost the tail little: the kernel's scheduler runs a server that wakes
    for a request ahead of loops that never sleep (measured p99 0.03 s with or without
    hedging). The limit is what hurts: the replica cannot run at all for 450 ms, and
    only hedging its reads to the other replica keeps the tail down."""
    shop: Shop = start_shop(replicas=2)
    balancer = ReplicaClient(
        [http_url(r) for r in shop.replicas],
        hedge_after=None if "hedging" in REMOVED else 0.05,
    )
    order = shop.place_order()

    def browse() -> None:
        balancer.get(f"/orders/{order['id']}")

    try:
        chaos.steady_state(browse, calls=20, p99=0.25)
        with chaos.cpu_stress(shop.replicas[0], cores=4, cpus=[0]):
            chaos.steady_state(
                browse, duration=1.5, concurrency=8, interval=0.02, p99=0.25, max_error_rate=0.0
            )
        with chaos.cpu_throttle(shop.replicas[0], cpus=0.1, period_ms=500):
            chaos.steady_state(
                browse, duration=2.0, concurrency=8, interval=0.02, p99=0.25, max_error_rate=0.0
            )
    finally:
        balancer.close()


def _browse_and_buy(shop: Shop) -> None:
    """What a customer does: look at a product, order it, look at the order."""
    shop.app.get("/products/mug")
    order = shop.place_order()
    shop.app.get(f"/orders/{order['id']}")


@pytest.mark.chaos(blast_radius=["redis"])
def test_shop_keeps_selling_when_redis_is_out_of_memory(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: when Redis runs out of memory (maxmemory reached under noeviction, so
    every write is refused with "OOM command not allowed"), the shop keeps selling from
    PostgreSQL with no error and p99 under 1.5 s, and serves from the cache again once
    Redis has memory."""
    chaos.steady_state(lambda: _browse_and_buy(shop), calls=10, p99=1.0)
    with chaos.memory_limit(shop.backing.redis, mib=4, fill=True):
        chaos.steady_state(lambda: _browse_and_buy(shop), duration=2.0, interval=0.02, p99=1.5)
    chaos.recovers(lambda: shop.app.get("/products/tee")["source"] == "cache", within=3.0)
