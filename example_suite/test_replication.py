"""Replication lag: the order API reads from a PostgreSQL streaming replica.

    order API --> chaos.proxy("postgres")  --> primary
              --> replica (hot standby) --> chaos.proxy("replication") --> primary

The replica is ``chaos_services.postgres_replica(primary, via=link)``: its WAL stream
from the primary goes through the ``replication`` proxy, so latency or an outage there
makes it lag, like a slow or broken network between two database hosts. The shop reads
a customer's orders from the replica (``SHOP_REPLICA_URL``), routed by the replica's
position (example_suite/shop/reads.py); ``SHOP_FRAGILE=read_your_writes`` reads from
the replica however far behind it is.

The replicas follow a primary of their own (``postgres-primary``), so that the base
backup of each replica copies a few databases, not every database the suite made.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import requests

from example_suite.conftest import FRAGILE
from example_suite.shop.harness import create_database, start_service
from example_suite.shop.reads import lsn_bytes
from example_suite.shop.testbed import Backing
from pytest_chaos import Chaos, ChaosProxy
from pytest_chaos.services import ChaosServices, Service

#: the shop's bound (SHOP_REPLICA_MAX_LAG_BYTES) and the one the experiment checks: the
#: shop samples the lag every 50 ms, so a read may be staler than its bound by what the
#: primary wrote meanwhile (an order is about 550 bytes of WAL)
SHOP_MAX_LAG = 4096
STALENESS_BOUND = 32768


@dataclass
class ReplicatedShop:
    """The order API with a primary and a replica, and the proxy of the replication link."""

    url: str
    session: requests.Session
    link: ChaosProxy
    primary_url: str
    replica_url: str
    process: Service

    def place_order(self, customer: str) -> tuple[int, str]:
        """Place an order; its id and the ``Write-LSN`` the shop returned."""
        response = self.session.post(
            f"{self.url}/orders",
            json={"customer": customer, "sku": "mug", "qty": 1},
            headers={"Idempotency-Key": uuid.uuid4().hex},
            timeout=5,
        )
        response.raise_for_status()
        return int(response.json()["id"]), response.headers["Write-LSN"]

    def orders_of(self, customer: str, after: str | None = None) -> dict[str, Any]:
        """``GET /customers/<customer>/orders`` (``after``: the LSN the read must see)."""
        params = {"after": after} if after else None
        response = self.session.get(
            f"{self.url}/customers/{customer}/orders", params=params, timeout=5
        )
        response.raise_for_status()
        return dict(response.json())

    def position(self, which: str) -> int:
        """The primary's WAL insert position, or the replica's replay position, in bytes."""
        url = self.primary_url if which == "primary" else self.replica_url
        sql = (
            "SELECT pg_current_wal_insert_lsn()::text"
            if which == "primary"
            else "SELECT pg_last_wal_replay_lsn()::text"
        )
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            row = conn.execute(sql).fetchone()
        assert row is not None
        return lsn_bytes(str(row[0]))

    def lag(self) -> int:
        """How many bytes of WAL the replica has still to replay."""
        primary = self.position("primary")
        return max(0, primary - self.position("replica"))


@pytest.fixture(scope="session")
def primary(chaos_services: ChaosServices) -> Service:
    """A PostgreSQL primary for the replication experiments only."""
    return chaos_services.postgres("postgres-primary")


@pytest.fixture
def replicated_shop(
    chaos: Chaos,
    chaos_services: ChaosServices,
    primary: Service,
    backing: Backing,
) -> Iterator[ReplicatedShop]:
    """The order API on a fresh database of ``primary`` with a fresh replica of it."""
    name = f"shop_{uuid.uuid4().hex[:10]}"
    create_database(primary.url, name)
    on_primary = Backing(postgres=primary, redis=backing.redis)
    link = chaos.proxy("replication", upstream=primary)
    db = chaos.proxy("postgres", upstream=primary)
    cache = chaos.proxy("redis", upstream=backing.redis)
    with chaos_services.postgres_replica(primary, via=link, name="postgres-replica") as replica:
        replica_url = on_primary.database_url(replica.address, name)
        env = {
            "SHOP_DATABASE_URL": on_primary.database_url(db.address, name),
            "SHOP_REPLICA_URL": replica_url,
            "SHOP_REPLICA_MAX_LAG_BYTES": str(SHOP_MAX_LAG),
            "SHOP_REDIS_URL": f"redis://{cache.address}/0",
            "SHOP_REDIS_PREFIX": name,
            # nothing here pays: no provider process (port 9, discard, answers nobody)
            "SHOP_PAYMENTS_URL": "http://127.0.0.1:9",
            "SHOP_FRAGILE": FRAGILE,
        }
        with start_service(chaos_services, "orders", name="orders-1", env=env) as process:
            shop = ReplicatedShop(
                url=f"http://{process.address}",
                session=requests.Session(),
                link=link,
                primary_url=on_primary.database_url(primary.address, name),
                replica_url=replica_url,
                process=process,
            )
            try:
                # the replica has replayed the schema and the first order before faults
                shop.place_order("warm-up")
                deadline = time.monotonic() + 10
                while shop.lag() > 0 and time.monotonic() < deadline:
                    time.sleep(0.05)
                yield shop
            finally:
                shop.session.close()


@pytest.mark.chaos(blast_radius=["replication"])
def test_the_shop_reads_its_own_writes_while_the_replica_lags(
    chaos: Chaos, replicated_shop: ReplicatedShop
) -> None:
    """Hypothesis: with 400 ms added to the replica's WAL stream, a customer who places
    an order and lists their orders at once sees it, every time: the shop sends the
    read to the primary (or waits for the replica) until the replica has replayed it."""
    shop = replicated_shop
    customer = f"ryw-{uuid.uuid4().hex[:8]}"
    missing: list[int] = []
    sources: list[str] = []
    behind = 0
    with shop.link.latency(400):
        for _ in range(8):
            order_id, lsn = shop.place_order(customer)
            behind += shop.position("replica") < lsn_bytes(lsn)
            answer = shop.orders_of(customer, after=lsn)
            sources.append(answer["source"])
            if order_id not in answer["orders"]:
                missing.append(order_id)
    assert behind > 0, "the experiment did not run as designed: the replica never lagged"
    assert not missing, (
        f"read-your-writes violated: {len(missing)} of 8 orders were missing from the "
        f"customer's own list read right after placing them (orders {missing}); the "
        f"replica was behind the write {behind} times; reads went to {sources}"
    )


@pytest.mark.chaos(blast_radius=["replication"])
def test_stale_reads_stay_within_the_staleness_bound(
    chaos: Chaos, replicated_shop: ReplicatedShop
) -> None:
    """Hypothesis: while the replication link is down and orders keep coming, a read
    that accepts stale data (no ``after``) is never more than 32 KiB of WAL behind the
    primary: the shop stops reading from a replica that lags beyond its bound (4 KiB)."""
    shop = replicated_shop
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        while not stop.is_set():
            written.append(shop.place_order(f"load-{uuid.uuid4().hex[:6]}")[0])

    staleness: list[int] = []
    sources: dict[str, int] = {"replica": 0, "primary": 0}
    writers = [threading.Thread(target=write, daemon=True) for _ in range(2)]
    with shop.link.down():
        for writer in writers:
            writer.start()
        try:
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                before = shop.position("primary")
                answer = shop.orders_of("nobody")
                sources[answer["source"]] += 1
                if answer["source"] == "replica":
                    staleness.append(max(0, before - lsn_bytes(answer["lsn"])))
                time.sleep(0.05)
            lag_at_end = shop.lag()
        finally:
            stop.set()
            for writer in writers:
                writer.join(timeout=10)
    assert lag_at_end > STALENESS_BOUND, (
        f"the experiment did not run as designed: the replica lagged only {lag_at_end} "
        f"bytes after {len(written)} orders with its link down"
    )
    worst = max(staleness, default=0)
    assert worst <= STALENESS_BOUND, (
        f"staleness bound violated: a stale read served by the replica was {worst} bytes "
        f"of WAL behind the primary > allowed {STALENESS_BOUND} ({len(staleness)} of "
        f"{sum(sources.values())} reads from the replica, the replica {lag_at_end} bytes "
        f"behind at the end, {len(written)} orders written)"
    )


@pytest.mark.chaos(blast_radius=["replication"])
def test_the_replica_catches_up_within_3s_after_the_link_heals(
    chaos: Chaos, replicated_shop: ReplicatedShop
) -> None:
    """Hypothesis: after a 1.5 s outage of the replication link with orders written
    meanwhile, the replica has replayed everything the primary wrote within 3 s of the
    heal, and the shop's stale reads see the last order again."""
    shop = replicated_shop
    customer = f"catch-{uuid.uuid4().hex[:8]}"
    with shop.link.down():
        for _ in range(10):
            last, _lsn = shop.place_order(customer)
        time.sleep(0.5)
        lag_during = shop.lag()
    assert lag_during > 0, "the experiment did not run as designed: the replica kept up"
    target = shop.position("primary")

    def caught_up() -> None:
        replayed = shop.position("replica")
        if replayed < target:
            raise AssertionError(f"replica {target - replayed} bytes behind")
        if last not in shop.orders_of(customer)["orders"]:
            raise AssertionError(f"the stale read does not show order {last} yet")

    chaos.recovers(caught_up, within=3.0, consecutive=1)
