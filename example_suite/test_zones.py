"""Zones and regions: Netflix's Chaos Gorilla (lose an availability zone) and Chaos
Kong (lose a region), with ``chaos.group``.

Each zone (or region) runs its own replica of the order API, reaching the data stores
through proxies of its own; ``chaos.group("zone-a", [...])`` names them, and
``zone.down()`` fails all of them as one fault: the replica is killed (SIGKILL, as a
zone losing power) and its links are cut. Healing restarts the replica and restores
the links.

    zone-a: orders-a --> postgres-a / redis-a --> the data stores
    zone-b: orders-b --> postgres-b / redis-b --> the same data stores

``SHOP_FRAGILE=zone_isolation`` wires zone B's replica through zone A's paths (a
hidden cross-zone dependency, what Chaos Gorilla exists to find).

In the Chaos Gorilla experiment both zones share one database (a multi-zone database);
in the Chaos Kong experiment each region has its own PostgreSQL and Redis, and the
clients fail over from region A to region B as a global load balancer (DNS failover)
would, and come back when A heals.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from example_suite.conftest import FRAGILE, REMOVED
from example_suite.shop.harness import (
    ReplicaClient,
    ShopClient,
    ShopRequestFailed,
    create_database,
    http_url,
    orders_in,
    start_service,
)
from example_suite.shop.testbed import Backing
from pytest_chaos import Chaos, ChaosProxy
from pytest_chaos.services import ChaosServices, Service


@dataclass
class Zone:
    """One zone (or region): its replica of the order API and its links."""

    name: str
    process: Service
    links: list[ChaosProxy]
    database_url: str

    @property
    def url(self) -> str:
        """The replica's base URL."""
        return http_url(self.process)

    def members(self) -> list[Any]:
        """What fails with the zone: its links and its replica."""
        return [*self.links, self.process]


@pytest.fixture
def start_zone(chaos: Chaos, chaos_services: ChaosServices) -> Iterator[Callable[..., Zone]]:
    """A factory: a replica of the order API in zone ``name`` on ``backing``'s stores
    (database ``database``, made unless it exists)."""
    started: list[Zone] = []

    def start(name: str, backing: Backing, database: str) -> Zone:
        admin = backing.postgres_admin_url
        with_db = backing.database_url(backing.postgres.address, database)
        if not any(z.database_url == with_db for z in started):
            create_database(admin, database)
        db = chaos.proxy(f"postgres-{name}", upstream=backing.postgres)
        cache = chaos.proxy(f"redis-{name}", upstream=backing.redis)
        if "zone_isolation" in REMOVED and started:
            # a hidden cross-zone dependency: this replica is wired through the first
            # zone's network paths (and, for regions, that region's stores)
            db, cache = started[0].links
        env = {
            "SHOP_DATABASE_URL": backing.database_url(db.address, database),
            "SHOP_REDIS_URL": f"redis://{cache.address}/0",
            "SHOP_REDIS_PREFIX": database,
            # nothing here pays: no provider process (port 9, discard, answers nobody)
            "SHOP_PAYMENTS_URL": "http://127.0.0.1:9",
            "SHOP_FRAGILE": FRAGILE,
        }
        process = start_service(chaos_services, "orders", name=f"orders-{name}", env=env)
        zone = Zone(name, process, [db, cache], with_db)
        started.append(zone)
        warm = ShopClient(zone.url, timeout=10)
        try:
            warm.get("/products/mug")
            warm.post("/orders", json={"customer": "warm-up", "sku": "mug", "qty": 1})
        finally:
            warm.close()
        return zone

    try:
        yield start
    finally:
        for zone in started:
            zone.process.remove()


def _order(client: Any, customer: str) -> int:
    answer = client.post(
        "/orders",
        json={"customer": customer, "sku": "mug", "qty": 1},
        headers={"Idempotency-Key": customer},
    )
    return int(answer["id"])


@pytest.mark.chaos(blast_radius=["zone-a"])
def test_chaos_gorilla_the_shop_survives_the_loss_of_a_zone(
    chaos: Chaos, start_zone: Callable[..., Zone], backing: Backing
) -> None:
    """Hypothesis: with a replica of the order API in each of two zones behind a load
    balancer, losing zone A whole (its replica killed, its links cut, as one fault)
    costs no customer request and no acknowledged order, and zone A serves again
    after the heal."""
    database = f"shop_{uuid.uuid4().hex[:10]}"
    zone_a = start_zone("a", backing, database)
    zone_b = start_zone("b", backing, database)
    zone = chaos.group("zone-a", zone_a.members())
    balancer = ReplicaClient([zone_a.url, zone_b.url])
    history = chaos.history()

    def buy() -> None:
        customer = f"gorilla-{uuid.uuid4().hex[:12]}"
        op = history.write(customer, customer, lambda: _order(balancer, customer))
        if op.outcome != "ack":  # the history keeps it; the observer counts it too
            raise ShopRequestFailed(f"order {customer}: {op.outcome} ({op.error})")

    try:
        with chaos.observe(buy, p99=2.0, max_error_rate=0.0, interval=0.02):
            time.sleep(0.5)
            with zone.down():
                time.sleep(1.5)
            time.sleep(0.5)
        assert balancer.failovers > 0, "no request met the lost zone: nothing was tested"
        stored: dict[str, int] = {}
        for order in orders_in(zone_b.database_url):
            stored[order["customer"]] = stored.get(order["customer"], 0) + 1
        history.check(lambda customer: [customer] * stored.get(customer, 0))
        back = ShopClient(zone_a.url)
        try:
            chaos.recovers(lambda: _order(back, f"back-{uuid.uuid4().hex}"), within=3.0)
        finally:
            back.close()
    finally:
        balancer.close()


class RegionClient:
    """Active-passive failover between regions, as a global load balancer does: every
    request goes to the first region that answers, a region that cannot be reached is
    skipped for ``retry_after`` seconds. Only idempotent requests (with an
    Idempotency-Key) are sent again."""

    def __init__(self, regions: list[Zone], retry_after: float = 1.0) -> None:
        self.regions = regions
        self.clients = [ShopClient(z.url, timeout=1.0) for z in regions]
        self.retry_after = retry_after
        self._skip_until = [0.0] * len(regions)
        self._lock = threading.Lock()
        #: (monotonic time, region name) of every acknowledged request
        self.served: list[tuple[float, str]] = []

    def post(self, path: str, **kwargs: Any) -> Any:
        """``POST`` to the first reachable region."""
        last: ShopRequestFailed | None = None
        now = time.monotonic()
        order = [i for i in range(len(self.regions)) if self._skip_until[i] <= now]
        order += [i for i in range(len(self.regions)) if i not in order]
        for index in order:
            try:
                answer = self.clients[index].post(path, **kwargs)
            except ShopRequestFailed as exc:
                if exc.status is not None and exc.status < 500:
                    raise
                last = exc
                self._skip_until[index] = time.monotonic() + self.retry_after
                continue
            with self._lock:
                self.served.append((time.monotonic(), self.regions[index].name))
            return answer
        assert last is not None
        raise last

    def close(self) -> None:
        """Close every connection pool."""
        for client in self.clients:
            client.close()


@pytest.mark.chaos(blast_radius=["region-a"])
def test_chaos_kong_the_shop_fails_over_to_another_region_and_back(
    chaos: Chaos,
    chaos_services: ChaosServices,
    start_zone: Callable[..., Zone],
    backing: Backing,
) -> None:
    """Hypothesis: when region A fails whole (its replica, its links to its own
    PostgreSQL and Redis), the clients fail over to region B, which has stores of its
    own: under 5% of orders fail during the failover, region B acknowledges orders
    within 1.5 s of the loss, no acknowledged order is lost, and orders go to region A
    again within 3 s of the heal."""
    region_b_stores = Backing(
        postgres=chaos_services.postgres("postgres-region-b"),
        redis=chaos_services.redis("redis-region-b"),
    )
    database = f"shop_{uuid.uuid4().hex[:10]}"
    region_a = start_zone("a", backing, database)
    region_b = start_zone("b", region_b_stores, database)
    region = chaos.group("region-a", region_a.members())
    client = RegionClient([region_a, region_b])
    history = chaos.history()

    def buy() -> None:
        customer = f"kong-{uuid.uuid4().hex[:12]}"
        op = history.write(customer, customer, lambda: _order(client, customer))
        if op.outcome != "ack":  # the history keeps it; the observer counts it too
            raise ShopRequestFailed(f"order {customer}: {op.outcome} ({op.error})")

    try:
        with chaos.observe(buy, max_error_rate=0.05, interval=0.02):
            time.sleep(0.5)
            with region.down():
                lost_at = time.monotonic()
                time.sleep(1.5)
            healed_at = time.monotonic()
            time.sleep(0.2)
        served_b = [t for t, name in client.served if name == "b" and t >= lost_at]
        assert served_b, "region B acknowledged no order after region A was lost"
        failover = served_b[0] - lost_at
        assert failover <= 1.5, (
            f"failover too slow: region B acknowledged its first order {failover:.2f} s "
            f"after region A was lost > allowed 1.5 s"
        )
        stored = {o["customer"] for o in orders_in(region_a.database_url)}
        stored |= {o["customer"] for o in orders_in(region_b.database_url)}
        acked = [op.value for op in history.ops if op.outcome == "ack"]
        lost = [customer for customer in acked if customer not in stored]
        assert not lost, (
            f"{len(lost)} of {len(acked)} acknowledged orders are in neither region's "
            f"database after the heal: {lost[:5]}"
        )

        def back_in_region_a() -> None:
            _order(client, f"back-{uuid.uuid4().hex}")
            if client.served[-1][1] != "a":
                raise AssertionError("the order was served by region B")

        chaos.recovers(back_in_region_a, within=3.0)
        assert any(name == "a" and t > healed_at for t, name in client.served)
    finally:
        client.close()
