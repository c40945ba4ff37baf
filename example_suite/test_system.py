"""System-wide chaos experiments: cascades, recovery, degradation ladder, duplicates."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable

import pytest

from example_suite.shop.harness import Load, ReplicaClient, ShopClient, http_url
from example_suite.shop.testbed import Shop
from pytest_chaos import Chaos


def _browse_and_buy(shop: Shop) -> None:
    shop.app.get("/products/sticker")
    order = shop.place_order(sku="sticker")
    shop.app.get(f"/orders/{order['id']}")


@pytest.mark.chaos(blast_radius=["payments"])
def test_hanging_payment_provider_does_not_take_the_shop_down(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: while the payment provider accepts connections and never answers,
    and customers keep pressing "pay", browsing and ordering (which need only the
    database and the cache) still work: under 2% errors, p99 under 1 s (about 0.02 s
    in our runs; a worker thread held by a stuck payment makes a page wait 1.5 s)."""
    chaos.steady_state(lambda: _browse_and_buy(shop), calls=10, p99=1.0)
    payer = ShopClient(shop.app.base_url, timeout=1.5)
    pending = itertools.cycle([shop.place_order()["id"] for _ in range(40)])

    def pay_something() -> None:
        payer.post(f"/orders/{next(pending)}/pay")

    try:
        with shop.pay.timeout(), Load(pay_something, workers=4, pause=0.05):
            time.sleep(2.5)  # let stuck payments pile up (or the breaker open) first
            chaos.steady_state(
                lambda: _browse_and_buy(shop), duration=4.0, p99=1.0, max_error_rate=0.02
            )
    finally:
        payer.close()


@pytest.mark.chaos(blast_radius=["postgres"])
def test_shop_recovers_quickly_after_the_database_comes_back(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: after the database black-holes for 2 s under load, the shop takes
    orders again within 3 s of the heal (stale connections are dropped, not reused)."""
    impatient = ShopClient(shop.app.base_url, timeout=0.5)
    try:
        with (
            Load(
                lambda: impatient.post(
                    "/orders",
                    json={"customer": "load", "sku": "mug", "qty": 1},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                ),
                workers=6,
            ),
            shop.db.timeout(),
        ):
            time.sleep(2.0)
    finally:
        impatient.close()
    chaos.recovers(shop.place_order, within=3.0, consecutive=5)


@pytest.mark.chaos(blast_radius=["postgres"])
def test_degradation_ladder_holds_the_latency_objective_at_every_step(
    chaos: Chaos, shop: Shop
) -> None:
    """Hypothesis: as database latency climbs 0 -> 20 -> 40 -> 80 ms, checkout keeps
    its objective (p99 under 1 s, no error) at every step. A guard watches liveness and
    aborts the experiment (healing everything) if the API stops answering."""
    with chaos.guard(shop.health, max_latency=2.0, consecutive=3):
        chaos.steady_state(shop.place_order, calls=5, p99=1.0)
        for ms in (20, 40, 80):
            with shop.db.latency(ms, jitter=ms // 5):
                chaos.steady_state(shop.place_order, calls=5, p99=1.0, max_error_rate=0.0)
    chaos.recovers(shop.place_order, within=2.0)


@pytest.mark.proxy_extensions
@pytest.mark.chaos(blast_radius=["orders-api"])
def test_a_resubmitted_order_is_created_once(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: when a load balancer replays the customer's POST /orders and the
    customer then retries it too, all with the same Idempotency-Key, one order exists."""
    front = chaos.proxy("orders-api", upstream=shop.process.address)
    client = ShopClient(f"http://{front.address}")
    key = uuid.uuid4().hex
    customer = f"c-{key[:8]}"
    try:
        chaos.idempotent(
            lambda: client.post(
                "/orders",
                json={"customer": customer, "sku": "tee", "qty": 1},
                headers={"Idempotency-Key": key},
            ),
            state=lambda: shop.stored_customers(customer),
            via=front.http_duplicate(copies=2, method="POST"),
            times=3,
        )
    finally:
        client.close()
    assert len(shop.stored_customers(customer)) == 1


@pytest.mark.chaos(blast_radius=["orders-1", "orders-2"])
def test_chaos_monkey_kills_a_replica_and_the_shop_stays_up(
    chaos: Chaos, start_shop: Callable[..., Shop]
) -> None:
    """Hypothesis: with two replicas of the order API behind a client-side load balancer,
    killing one at random (SIGKILL, mid-traffic) costs no customer request, and the
    restarted replica takes traffic again.

    The replicas are ``chaos_services.process`` services, so ``chaos.kill_random``
    picks the victim with the test's seeded RNG and SIGKILLs its whole process tree;
    healing restarts it on the same port.
    """
    shop: Shop = start_shop(replicas=2)
    balancer = ReplicaClient([http_url(r) for r in shop.replicas])

    def browse_and_buy() -> None:
        order = balancer.post(
            "/orders",
            json={"customer": "monkey", "sku": "mug", "qty": 1},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        balancer.get(f"/orders/{order['id']}")

    try:
        chaos.steady_state(browse_and_buy, calls=10, p99=1.0)
        with chaos.observe(browse_and_buy, p99=2.0, max_error_rate=0.0, interval=0.02):
            time.sleep(0.5)
            (kill,) = chaos.kill_random(shop.replicas)
            time.sleep(1.0)  # 50 requests or so meet the dead replica
            kill.heal()  # restarts the replica on its port and waits until it answers
            time.sleep(0.5)
        assert balancer.failovers > 0, "no request met the dead replica: nothing was tested"
        victim = next(r for r in shop.replicas if r.name == kill.target)
        survivor = ShopClient(http_url(victim))
        try:
            chaos.recovers(lambda: survivor.get("/health")["status"] == "ok", within=3.0)
        finally:
            survivor.close()
    finally:
        balancer.close()
